"""``distil run``: annotate texts with a pipeline and print one JSON record per document."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from typing import IO, Any, Optional, Union

import typer

from ...errors import DistilError
from ...records import DocRecord, dumps, to_record
from ..annotate import Block, Engine
from ..batch import DocError, process
from ..config import load_pipeline
from ..io.texts import InputItem, Skip, TextItem, from_arguments, read_inputs
from .app import OVERRIDES_CONTEXT, app
from .engine import EngineOptions, engine_options, open_engine
from .overrides import fail, split_overrides
from .report import print_usage_report, print_usage_table


@app.command("run", context_settings=OVERRIDES_CONTEXT)
def run_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg) or a directory saved with nlp.to_disk."),
    input_file: Optional[str] = typer.Option(
        None,
        "--input",
        "-i",
        help="Text file (one doc a line), JSONL with a 'text' field, CSV with a 'text' column, - for stdin, "
        "or an annotated corpus (.spacy or distil records; its entities are given to the pipeline). "
        "Not together with texts as arguments.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write JSONL records here instead of stdout."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    text_field: str = typer.Option("text", "--text-field", help="Field holding the text in JSONL input."),
    engine: str = engine_options.engine,
    replicas: int = engine_options.replicas,
    cpus_per_replica: float = engine_options.cpus_per_replica,
    gpus_per_replica: float = engine_options.gpus_per_replica,
    ray_address: Optional[str] = engine_options.ray_address,
) -> None:
    """Run a pipeline over texts and print one JSON record per document.

    Texts come as arguments after CONFIG, or from --input (not both). Config overrides go
    after the options, spaCy style. Lines that cannot be read (invalid UTF-8,
    malformed JSON, empty text) are skipped, counted and reported on stderr;
    the other documents are still written.

    With --engine ray the documents are annotated by --replicas pipeline
    replicas on a Ray cluster and written in input order (docs/scale.md);
    for a corpus worth resuming, use distil annotate.

    Example: distil run configs/all_rules.cfg "Apple hired Tim Cook in Cupertino." --components.ner.score 0.9

    Example: distil run configs/all_rules.cfg --input texts.txt --engine ray --replicas 2 --output out.jsonl
    """
    texts, overrides = split_overrides(ctx.args)
    if input_file is None and not texts:
        raise fail("give texts after CONFIG or --input FILE (- for stdin)")
    if input_file is not None and texts:
        # Using both would make the output order (and which texts came from where) a guess: refuse the mix.
        shown = ", ".join(repr(t if len(t) <= 40 else t[:37] + "...") for t in texts[:3])
        raise fail(
            f"give texts either as arguments or with --input, not both (got --input {input_file} and "
            f"{len(texts)} text argument(s): {shown}); put the texts in the input file, or drop --input"
        )
    if input_file is not None and input_file != "-" and not Path(input_file).exists():
        raise fail(f"input file not found: {input_file}")
    options = EngineOptions(engine, replicas, cpus_per_replica, gpus_per_replica, ray_address)
    try:
        nlp = load_pipeline(config, overrides)
        items: Iterator[InputItem] = (
            read_inputs(input_file, nlp, text_field=text_field) if input_file is not None else from_arguments(texts)
        )
    except (DistilError, FileNotFoundError) as err:
        raise fail(str(err)) from None

    skipped: Counter[str] = Counter()
    examples: dict[str, str] = {}
    written = 0
    usage: Optional[dict[str, Any]] = None
    sink: IO[str]
    with (output.open("w", encoding="utf-8") if output else nullcontext(sys.stdout)) as sink:

        def texts_only() -> Iterator[TextItem]:
            for item in items:
                if isinstance(item, Skip):
                    skipped[_reason(item.reason)] += 1
                    examples.setdefault(_reason(item.reason), str(item))
                    continue
                yield item

        def write(item: TextItem, result: Union[DocRecord, str]) -> None:
            nonlocal written
            if isinstance(result, str):
                reason = f"pipeline error: {result}"
                skipped[_reason(reason)] += 1
                examples.setdefault(_reason(reason), f"{item.source}:{item.line}: {reason}")
                return
            if item.meta:
                result.meta = {**item.meta, **result.meta}
            sink.write(dumps(result) + "\n")
            sink.flush()
            written += 1

        try:
            if options.engine == "local":
                for item, done in process(nlp, texts_only(), lambda it: it.pipeline_input(), batch_size=batch_size):
                    write(item, done.reason if isinstance(done, DocError) else to_record(done))
            else:
                with open_engine(options, nlp, config, overrides, None) as runner:
                    for item, result in _in_input_order(runner, texts_only(), batch_size):
                        write(item, result)
                    usage = runner.usage()
        except DistilError as err:
            # Found mid-stream (stdin, a corpus line): what was written stays written, and is counted.
            typer.echo(f"distil run: {written} document(s) written before the error", err=True)
            raise fail(str(err)) from None

    summary = f"distil run: {written} document(s) written"
    if skipped:
        summary += f", {sum(skipped.values())} skipped"
    typer.echo(summary, err=True)
    for reason, count in skipped.most_common():
        typer.echo(f"  skipped {count} x {reason} (e.g. {examples[reason]})", err=True)
    if usage is None:
        print_usage_report(nlp)
    else:
        print_usage_table(usage)
    if written == 0 and skipped:
        raise typer.Exit(1)


# What an engine's worker adds to a record's meta for the annotation store, which ``distil run`` output never had.
_STORE_META = ("key", "source", "line")


def _in_input_order(
    runner: Engine, items: Iterator[TextItem], batch_size: int
) -> Iterator[tuple[TextItem, Union[DocRecord, str]]]:
    """Run items through an engine in blocks and give them back in input order, with a record or an error.

    An engine may finish blocks out of order (several replicas): blocks that
    come early wait until the ones before them are written.
    """
    numbered = ((str(n), item) for n, item in enumerate(items))
    blocks = iter(lambda: list(islice(numbered, batch_size)), [])
    early: dict[int, tuple[Block, list[DocRecord]]] = {}
    expected = 0
    for block, records in runner.run(blocks):
        early[int(block[0][0])] = (block, records)
        while expected in early:
            done, done_records = early.pop(expected)
            for (_, item), record in zip(done, done_records, strict=True):
                failures = record.meta.get("failures", [])
                error = next((f["reason"] for f in failures if f.get("kind") == "pipeline_error"), None)
                record.meta = {k: v for k, v in record.meta.items() if k not in _STORE_META}
                yield item, error if error is not None else record
            expected += len(done)


def _reason(text: str) -> str:
    """Group skip reasons: drop positions so 'invalid UTF-8 at byte 3' and '... byte 9' count together."""
    return text.split(" at byte")[0].split(" at column")[0]
