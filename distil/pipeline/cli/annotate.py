"""``distil annotate``: annotate a corpus into records and DocBin shards, resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from ...errors import DistilError
from ..annotate import AnnotateReport, annotate
from ..config import load_pipeline
from ..io.texts import read_inputs
from ..usage import collect_usage, usage_totals
from .app import OVERRIDES_CONTEXT, app
from .overrides import config_overrides, fail, import_code
from .report import print_usage_report


@app.command("annotate", context_settings=OVERRIDES_CONTEXT)
def annotate_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg) or a saved pipeline directory."),
    input_file: str = typer.Argument(
        ...,
        help="Text file (one doc a line), JSONL or CSV with a text field, -, or an annotated corpus "
        "(.spacy or distil records; its entities are kept).",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (records.jsonl, docs/*.spacy)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per batch (and per DocBin shard)."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field or CSV column holding the text."),
    code: Optional[Path] = typer.Option(None, "--code", help="Python file to import first (custom components)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Annotate only the first N input documents."),
) -> None:
    """Annotate a corpus with a pipeline; rerun the same command to resume after a crash or kill.

    Writes OUTPUT/records.jsonl (one record per distinct text, with its input
    line in meta), OUTPUT/docs/shard-*.spacy (DocBin) and OUTPUT/report.json.
    Documents already in OUTPUT are not redone; duplicate texts are annotated
    once. A .spacy or records input gives its entities to the pipeline (relation
    extraction over known entities) and nothing else. Config overrides go
    after the options, spaCy style.

    Example: distil annotate configs/ner_llm.cfg tweets.txt --output annotations/ --batch-size 16
    """
    import_code(code)
    if input_file != "-" and not Path(input_file).exists():
        raise fail(f"input file not found: {input_file}")
    try:
        nlp = load_pipeline(config, config_overrides(ctx))
        items = read_inputs(input_file, nlp, text_field=text_field)
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

    try:
        report = annotate(
            nlp, items, output, batch_size=batch_size, on_batch=on_batch, usage=lambda: collect_usage(nlp), limit=limit
        )
    except (DistilError, ValueError, FileNotFoundError) as err:
        raise fail(f"{err} (documents annotated before it are kept in {output}; rerun to resume)") from None
    finally:
        bar.close()
    typer.echo(
        f"distil annotate: {report.written} new document(s) in {report.seconds:.1f}s "
        f"({report.docs_per_second:.2f} docs/s), {report.resumed} already done, "
        f"{report.duplicates} duplicate(s), {sum(report.skipped.values())} skipped",
        err=True,
    )
    for reason, count in report.skipped.most_common():
        typer.echo(f"  skipped {count} x {reason} (e.g. {report.skip_examples[reason]})", err=True)
    if report.failures:
        typer.echo("  failures: " + ", ".join(f"{k}={v}" for k, v in report.failures.most_common()), err=True)
    print_usage_report(nlp)
    typer.echo(f"  output: {output / 'records.jsonl'}, {output / 'docs'}/", err=True)
    if report.written == 0 and report.resumed == 0 and report.duplicates == 0 and report.skipped:
        # Every input line was unusable: an exit status of 0 would pass for an annotated corpus.
        raise fail(f"no document of {input_file} could be annotated (all {sum(report.skipped.values())} skipped)")


def _totals(report: AnnotateReport) -> dict[str, float]:
    """Token and cost totals over every component that reports usage."""
    return usage_totals(report.usage, ("prompt_tokens", "completion_tokens", "cost"))
