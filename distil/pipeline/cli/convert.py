"""``distil convert``: turn CoNLL/IOB, CSV, SemEval or Prodigy JSONL into DocBin/records (or Prodigy)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ...corpus import CorpusError
from ..io.conll import SCHEMES
from ..io.conversion_report import ConversionError, ConversionReport
from ..io.convert import INPUT_FORMATS, OUTPUT_FORMATS, ConvertOptions, convert, load_labels
from .app import app
from .overrides import fail


@app.command("convert")
def convert_command(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="The file to convert."),
    output_path: Path = typer.Argument(
        ..., metavar="OUTPUT", help="Where to write: .spacy (DocBin), .jsonl (distil records, or Prodigy with --to prodigy), .txt (--to text)."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help=f"Input format: {', '.join(INPUT_FORMATS)} (jsonl = Prodigy-style tasks). Detected when omitted.",
    ),
    to: str = typer.Option("distil", "--to", help=f"Output format: {', '.join(OUTPUT_FORMATS)}."),
    scheme: str = typer.Option("auto", "--scheme", help=f"CoNLL tag scheme: {', '.join(SCHEMES)}."),
    n_sents: int = typer.Option(1, "--n-sents", help="CoNLL: sentences per Doc (never across -DOCSTART-)."),
    text_column: str | None = typer.Option(None, "--text-column", help="CSV: name (or 0-based index) of the text column."),
    label_column: str | None = typer.Option(
        None, "--label-column", help="CSV: name (or index) of the label column; default label/category/intent."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="JSON list of the full label set (CSV, Prodigy choices); default: labels seen."
    ),
    lang: str = typer.Option("en", "--lang", help="spaCy language code of the tokenizer for untokenised text."),
    strict: bool = typer.Option(False, "--strict", help="Stop with an error naming file:line at the first bad line."),
    report_path: Path | None = typer.Option(None, "--report", help="Also write the report as JSON to this file."),
) -> None:
    """Convert an annotated corpus into a DocBin (.spacy) or distil records (.jsonl), or to Prodigy JSONL.

    Prints a report: docs written, lines skipped or repaired by reason with file:line examples, and counts.

    Example: distil convert emerging.test.annotated wnut17-test.spacy --format conll
    """
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise fail(f"unknown input format {fmt!r}; use one of {', '.join(INPUT_FORMATS)}")
    if scheme not in SCHEMES:
        raise fail(f"unknown --scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    report = ConversionReport(strict=strict)
    try:
        options = ConvertOptions(
            scheme=scheme,  # type: ignore[arg-type]  # checked against SCHEMES above
            n_sents=n_sents,
            text_column=text_column,
            label_column=label_column,
            labels=load_labels(labels),
            lang=lang,
        )
        convert(input_path, output_path, fmt=fmt, to=to, options=options, report=report)
    except (ConversionError, CorpusError) as err:
        raise fail(str(err)) from err
    typer.echo(f"{input_path} -> {output_path}")
    typer.echo(report.format())
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
