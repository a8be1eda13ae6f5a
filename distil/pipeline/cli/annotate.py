"""``distil annotate``: annotate a corpus into an annotation store, resumably, here or on a Ray cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from ...errors import DistilError
from ..annotate import ABORT_AFTER, AnnotateReport, Engine, annotate
from ..config import load_pipeline
from ..fingerprint import pipeline_fingerprint
from ..io.texts import read_inputs
from ..usage import usage_totals
from .app import OVERRIDES_CONTEXT, app
from .engine import EngineOptions, engine_options, open_engine
from .overrides import config_overrides, fail, import_code
from .report import print_usage_table


@app.command("annotate", context_settings=OVERRIDES_CONTEXT)
def annotate_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg) or a saved pipeline directory."),
    input_file: str = typer.Argument(
        ...,
        help="Text file (one doc a line), JSONL or CSV with a text field, -, or an annotated corpus "
        "(.spacy or distil records; its entities are kept).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Annotation store (records.jsonl, job.json, report.json)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per block (one store append each)."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field or CSV column holding the text."),
    code: Optional[Path] = typer.Option(None, "--code", help="Python file to import first (custom components)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Annotate only the first N input documents."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Annotate again the stored documents that failed, replacing their records."
    ),
    new_job: bool = typer.Option(
        False, "--new-job", help="Go on in OUTPUT although the pipeline changed (its records are kept, not redone)."
    ),
    abort_after: int = typer.Option(
        ABORT_AFTER, "--abort-after", min=1,
        help="Stop after N documents in a row fail with HTTP 401/403/404 (a wrong key or model).",
    ),
    engine: str = engine_options.engine,
    replicas: int = engine_options.replicas,
    cpus_per_replica: float = engine_options.cpus_per_replica,
    gpus_per_replica: float = engine_options.gpus_per_replica,
    ray_address: Optional[str] = engine_options.ray_address,
) -> None:
    """Annotate a corpus with a pipeline; rerun the same command to resume after a crash or kill.

    Writes the annotation store OUTPUT: records.jsonl (one record per distinct
    text, with its input line in meta), job.json (what the pipeline was) and
    report.json (updated as the run goes). Documents already in OUTPUT are not
    redone; duplicate texts are annotated once; a second run on OUTPUT at the
    same time is refused; resuming with a changed pipeline is refused unless
    --new-job. --engine ray spreads the work over --replicas pipeline replicas
    on a Ray cluster (docs/scale.md). A .spacy or records input gives its
    entities to the pipeline (relation extraction over known entities) and
    nothing else. Config overrides go after the options, spaCy style.

    Example: distil annotate configs/ner_llm.cfg tweets.txt --output annotations/ --batch-size 16

    Example: distil annotate configs/ner_openai.cfg big.jsonl -o ann/ --engine ray --replicas 8 --cpus-per-replica 0.5
    """
    import_code(code)
    if input_file != "-" and not Path(input_file).exists():
        raise fail(f"input file not found: {input_file}")
    options = EngineOptions(engine, replicas, cpus_per_replica, gpus_per_replica, ray_address)
    try:
        overrides = config_overrides(ctx)
        nlp = load_pipeline(config, overrides)
        items = read_inputs(input_file, nlp, text_field=text_field)
        fingerprint = pipeline_fingerprint(nlp)
    except (DistilError, FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from None

    bar = tqdm(desc="annotate", unit="doc", dynamic_ncols=True, disable=None)

    def on_batch(report: AnnotateReport) -> None:
        bar.n = report.written
        postfix = {"docs/s": f"{report.docs_per_second:.1f}"}
        totals = _totals(report)
        postfix.update({k: str(v) for k, v in totals.items()})
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    @contextmanager
    def start() -> Iterator[Engine]:
        with open_engine(options, nlp, config, overrides, code) as runner:
            yield runner

    try:
        report = annotate(
            nlp, items, output, batch_size=batch_size, on_batch=on_batch, limit=limit, start_engine=start,
            fingerprint=fingerprint, new_job=new_job, retry_failed=retry_failed, abort_after=abort_after,
        )
    except (DistilError, ValueError, FileNotFoundError) as err:
        kept = "" if "are kept" in str(err) else f" (documents annotated before it are kept in {output}; rerun to resume)"
        raise fail(f"{err}{kept}") from None
    finally:
        bar.close()
    _print_summary(report, input_file, output)


def _print_summary(report: AnnotateReport, input_file: str, output: Path) -> None:
    typer.echo(
        f"distil annotate: {report.written} new document(s) in {report.seconds:.1f}s "
        f"({report.docs_per_second:.2f} docs/s), {report.resumed} already done, "
        f"{report.duplicates} duplicate(s), {sum(report.skipped.values())} skipped",
        err=True,
    )
    for reason, count in report.skipped.most_common():
        typer.echo(f"  skipped {count} x {reason} (e.g. {report.skip_examples[reason]})", err=True)
    if report.retried:
        typer.echo(f"  retried {report.retried} failed document(s)", err=True)
    if report.failures:
        typer.echo("  failures: " + ", ".join(f"{k}={v}" for k, v in report.failures.most_common()), err=True)
    if report.retried_blocks:
        typer.echo(f"  {report.retried_blocks} block(s) sent again after a replica was lost", err=True)
    print_usage_table(report.usage)
    typer.echo(f"  output: {output} ({report.stored} record(s); report.json, job.json)", err=True)
    if report.written == 0 and report.resumed == 0 and report.duplicates == 0 and report.skipped:
        # Every input line was unusable: an exit status of 0 would pass for an annotated corpus.
        raise fail(f"no document of {input_file} could be annotated (all {sum(report.skipped.values())} skipped)")


def _totals(report: AnnotateReport) -> dict[str, float]:
    """Token and cost totals over every component that reports usage."""
    return usage_totals(report.usage, ("prompt_tokens", "completion_tokens", "cost"))
