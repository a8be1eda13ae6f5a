"""``distil run``: annotate texts with a pipeline and print one JSON record per document."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Optional

import typer

from ...errors import DistilError
from ...records import dumps, to_record
from ..batch import DocError, process
from ..config import load_pipeline
from ..io.texts import InputItem, Skip, TextItem, from_arguments, read_inputs
from .app import OVERRIDES_CONTEXT, app
from .overrides import fail, split_overrides
from .report import print_usage_report


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
) -> None:
    """Run a pipeline over texts and print one JSON record per document.

    Texts come as arguments after CONFIG, or from --input (not both). Config overrides go
    after the options, spaCy style. Lines that cannot be read (invalid UTF-8,
    malformed JSON, empty text) are skipped, counted and reported on stderr;
    the other documents are still written.

    Example: distil run configs/all_rules.cfg "Apple hired Tim Cook in Cupertino." --components.ner.score 0.9
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
    sink: IO[str]
    with (output.open("w", encoding="utf-8") if output else nullcontext(sys.stdout)) as sink:

        def texts_only() -> Iterator[TextItem]:
            for item in items:
                if isinstance(item, Skip):
                    skipped[_reason(item.reason)] += 1
                    examples.setdefault(_reason(item.reason), str(item))
                    continue
                yield item

        try:
            for item, result in process(nlp, texts_only(), lambda it: it.pipeline_input(), batch_size=batch_size):
                if isinstance(result, DocError):
                    reason = f"pipeline error: {result.reason}"
                    skipped[_reason(reason)] += 1
                    examples.setdefault(_reason(reason), f"{item.source}:{item.line}: {reason}")
                    continue
                record = to_record(result)
                if item.meta:
                    record.meta = {**item.meta, **record.meta}
                sink.write(dumps(record) + "\n")
                sink.flush()
                written += 1
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
    print_usage_report(nlp)
    if written == 0 and skipped:
        raise typer.Exit(1)


def _reason(text: str) -> str:
    """Group skip reasons: drop positions so 'invalid UTF-8 at byte 3' and '... byte 9' count together."""
    return text.split(" at byte")[0].split(" at column")[0]
