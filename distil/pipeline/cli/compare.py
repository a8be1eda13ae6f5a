"""``distil compare``: several pipelines on the same gold data, one table, one plot."""

from __future__ import annotations

from pathlib import Path

import spacy
import typer

from ..compare import Row, compare_one, markdown_table, write_outputs
from ..config import ConfigError, load_pipeline
from ..evaluate import EvalReport
from ..io.corpus import CorpusError, read_docs
from .app import OVERRIDES_CONTEXT, app
from .overrides import fail, split_overrides


@app.command("compare", context_settings=OVERRIDES_CONTEXT)
def compare_command(
    ctx: typer.Context,
    gold: Path = typer.Option(..., "--gold", "-g", help="Gold Docs: .spacy DocBin or records .jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for compare.md, compare.json, compare.png."),
    limit: int = typer.Option(0, "--limit", min=0, help="Use only the first N gold documents (0: all)."),
    semeval_official: bool = typer.Option(False, "--semeval-official", help="Rank relations by the SemEval measure."),
    latency_docs: int = typer.Option(20, "--latency-docs", min=0, help="Docs timed one by one for p95 latency."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Batch size of the throughput run."),
    cache: bool = typer.Option(
        False, "--cache/--no-cache", help="Let LLM components answer from their response cache (speed and cost then lie)."
    ),
) -> None:
    """Evaluate several pipelines on the same gold Docs and write one comparison table and plot.

    Give the configs (or saved pipeline directories) after the options; write
    NAME=PATH to label one. Every pipeline runs on the same documents in this
    one process: the first --latency-docs documents one at a time (p95
    latency), the rest in batches (throughput); all of them are scored.
    Cost comes from components that report it (LLM price per 1k tokens).
    LLM response caches are off unless --cache is given: answers stored by an
    earlier run would make a model look free and instant.

    Example: distil compare --gold test.spacy --output compare/ teacher=configs/ner_llm.cfg student=configs/ner_encoder.cfg configs/ner_rules.cfg
    """
    specs, overrides = split_overrides(ctx.args)
    if not specs:
        raise fail("give at least one CONFIG (or NAME=CONFIG) to compare")
    if overrides:
        raise fail("config overrides are ambiguous with several pipelines; set them in the config files")
    try:
        golds = list(read_docs(gold, spacy.blank("en")))
    except CorpusError as err:
        raise fail(str(err)) from None
    if limit:
        golds = golds[:limit]
    if not golds:
        raise fail(f"{gold}: no gold documents")
    rows: list[Row] = []
    reports: dict[str, EvalReport] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
        typer.echo(f"distil compare: evaluating {name} ({path}) on {len(golds)} docs", err=True)
        try:
            nlp = load_pipeline(path)
            new_rows, report = compare_one(
                name,
                nlp,
                golds,
                semeval_official=semeval_official,
                latency_docs=latency_docs,
                batch_size=batch_size,
                response_cache=cache,
            )
        except (ConfigError, ValueError) as err:
            raise fail(f"{name}: {err}") from None
        rows += new_rows
        reports[name] = report
    paths = write_outputs(rows, reports, output)
    typer.echo(markdown_table(rows))
    typer.echo(f"wrote {paths['markdown']}, {paths['json']}, {paths['plot']}", err=True)
