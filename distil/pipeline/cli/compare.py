"""``distil compare``: several pipelines on the same gold data, one table, one plot."""

from __future__ import annotations

from pathlib import Path

import spacy
import typer
from spacy.language import Language

from ...corpus import CorpusError, read_docs
from ...errors import DistilError
from ..compare import compare_pipelines, markdown_table, write_outputs
from ..config import ConfigError, load_pipeline
from ..evaluate import DEFAULT_REPEATS, DEFAULT_WARMUP_DOCS
from ..sample import take_sample
from ..tasks import pipeline_tasks
from .app import OVERRIDES_CONTEXT, app
from .overrides import fail, overrides_per_pipeline, split_overrides


def parse_specs(specs: list[str]) -> list[tuple[str, str]]:
    """``(name, path)`` for each ``NAME=PATH`` or ``PATH`` argument (the name defaults to the file's stem).

    Every path must exist (a config file or a saved pipeline directory) or be
    an installed pipeline package, and names must be unique: both are checked
    here, before any pipeline is loaded, so a typo in the last argument fails
    in a second instead of after the first pipelines have run.
    """
    pairs: list[tuple[str, str]] = []
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
        if not name or not path:
            raise ConfigError(f"{spec!r}: give a pipeline as NAME=PATH or PATH (e.g. rules=configs/ner_rules.cfg)")
        pairs.append((name, path))
    seen: dict[str, str] = {}
    for name, path in pairs:
        if name in seen:
            raise ConfigError(
                f"two pipelines are named {name!r} ({seen[name]} and {path}); label them, e.g. a={seen[name]} b={path}"
            )
        seen[name] = path
    missing = [f"{name}={path}" for name, path in pairs if not Path(path).exists() and not spacy.util.is_package(path)]
    if missing:
        raise ConfigError(
            f"not found: {', '.join(missing)}; give a config file, a saved pipeline directory or an installed "
            f"pipeline package (nothing was run)"
        )
    return pairs


@app.command("compare", context_settings=OVERRIDES_CONTEXT)
def compare_command(
    ctx: typer.Context,
    gold: Path = typer.Option(..., "--gold", "-g", help="Gold Docs: .spacy DocBin or records .jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for compare.md, compare.json, compare.png."),
    limit: int = typer.Option(
        0,
        "--limit",
        min=0,
        help="Use N gold documents drawn at random with --seed (not the first N: gold files are often sorted by "
        "label), kept in file order (0: all).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit sample: the same seed gives the same documents."),
    semeval_official: bool = typer.Option(False, "--semeval-official", help="Rank relations by the SemEval measure."),
    latency_docs: int = typer.Option(20, "--latency-docs", min=0, help="Docs timed one by one for p95 latency."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Batch size of the throughput run."),
    cache: bool = typer.Option(
        False, "--cache/--no-cache", help="Let LLM components answer from their response cache (speed and cost then lie)."
    ),
    repeats: int = typer.Option(
        DEFAULT_REPEATS, "--repeats", min=1, help="Timed runs per pipeline; speed is their median (LLM: 1)."
    ),
    warmup_docs: int = typer.Option(
        DEFAULT_WARMUP_DOCS, "--warmup-docs", min=0, help="Documents run untimed before timing starts (LLM: 0)."
    ),
) -> None:
    """Evaluate several pipelines on the same gold Docs and write one comparison table and plot.

    Give the configs (or saved pipeline directories) after the options; write
    NAME=PATH to label one. Config overrides go after them: --NAME.section.key
    VALUE for pipeline NAME, or --section.key VALUE when there is only one
    pipeline. Every path and config is checked and every
    pipeline loaded before any of them runs. Every pipeline runs on the same
    documents in this one process: --warmup-docs documents untimed, the first
    --latency-docs documents one at a time (p95 latency), the rest in batches
    (throughput, the median of --repeats runs; one run for LLM pipelines);
    all of them are scored. --limit takes a seeded random sample.
    Cost comes from components that report it (LLM price per 1k tokens).
    LLM response caches are off unless --cache is given: answers stored by an
    earlier run would make a model look free and instant.

    Example: distil compare --gold test.spacy --output compare/ teacher=configs/ner_llm.cfg student=configs/ner_encoder.cfg configs/ner_rules.cfg
    """
    specs, overrides = split_overrides(ctx.args)
    if not specs:
        raise fail("give at least one CONFIG (or NAME=CONFIG) to compare")
    # Everything that can be wrong with the arguments is checked before anything runs: with an LLM teacher
    # listed first, a typo in the last pipeline would otherwise cost the teacher's whole run.
    try:
        pairs = parse_specs(specs)
        per_pipeline = overrides_per_pipeline([name for name, _ in pairs], overrides)
    except ConfigError as err:
        raise fail(str(err)) from None
    if output.exists() and not output.is_dir():
        raise fail(f"--output {output} is a file; give a directory for compare.md, compare.json and compare.png")
    if not gold.exists():
        raise fail(f"gold file not found: {gold}")
    try:
        all_golds = list(read_docs(gold, spacy.blank("en")))
    except CorpusError as err:
        raise fail(str(err)) from None
    if not all_golds:
        raise fail(f"{gold}: no gold documents")
    golds = take_sample(all_golds, limit or None, seed=seed)
    sample = f" (a random sample of {len(all_golds)}, --seed {seed})" if len(golds) < len(all_golds) else ""
    pipelines: list[tuple[str, str, Language]] = []
    for name, path in pairs:
        typer.echo(f"distil compare: loading {name} ({path})", err=True)
        try:
            pipelines.append((name, path, load_pipeline(path, per_pipeline[name])))
        except (DistilError, ValueError, OSError) as err:
            raise fail(f"{name} ({path}): {err} (nothing was run)") from None
        if not pipeline_tasks(pipelines[-1][2]):
            raise fail(
                f"{name} ({path}): the pipeline ({', '.join(pipelines[-1][2].pipe_names) or 'no components'}) has "
                f"no component that predicts entities, categories or relations (nothing was run)"
            )
    paths_of = {name: path for name, path, _ in pipelines}
    current: list[str] = []

    def starting(name: str) -> None:
        current[:] = [name]
        typer.echo(f"distil compare: evaluating {name} ({paths_of[name]}) on {len(golds)} docs{sample}", err=True)

    try:
        rows, reports = compare_pipelines(
            [(name, nlp) for name, _, nlp in pipelines],
            golds,
            semeval_official=semeval_official,
            latency_docs=latency_docs,
            batch_size=batch_size,
            response_cache=cache,
            repeats=repeats,
            warmup_docs=warmup_docs,
            on_start=starting,
        )
    except ValueError as err:
        raise fail(f"{current[0] if current else 'compare'}: {err}") from None
    paths = write_outputs(rows, reports, output)
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}", err=True)
    broken = [name for name, report in reports.items() if report.all_failed]
    if broken:
        reasons = "; ".join(f"{name}: {reports[name].failed_docs[0].reason}" for name in broken)
        raise fail(f"{', '.join(broken)} failed on every document, so no speed is reported for them ({reasons})")
