"""Convert an annotated corpus from an external format into distil's formats (or to Prodigy).

Input formats: ``conll`` (CoNLL/IOB), ``csv`` (``text,label``), ``semeval``
(SemEval-2010 Task 8), ``fire`` (FIRE: token offsets, relations by entity index), ``jsonl`` (Prodigy-style tasks), ``docbin`` (``.spacy``)
and ``records`` (distil JSONL records). Output: ``.spacy`` DocBin or ``.jsonl``
distil records through :func:`~distil.corpus.write_docs`, or
Prodigy-style JSONL. :func:`convert` returns a :class:`ConversionReport`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from ...corpus import RECORDS, CorpusError, read_docs, write_docs
from ...textfile import InputError, check_json_lines, empty_message, first_content_line, is_binary, json_array_message
from .conll import SCHEMES, Scheme, read_conll
from .conversion_report import ConversionError, ConversionReport
from .fire import looks_like_fire, read_fire
from .prodigy import read_prodigy, write_prodigy
from .semeval import read_semeval
from .tabular import read_csv, read_label_set

INPUT_FORMATS: tuple[str, ...] = ("conll", "csv", "semeval", "fire", "jsonl", "docbin", "records")
OUTPUT_FORMATS: tuple[str, ...] = ("distil", "prodigy", "text")

_BY_SUFFIX = {
    ".conll": "conll",
    ".conllu": "conll",
    ".iob": "conll",
    ".iob1": "conll",
    ".iob2": "conll",
    ".bio": "conll",
    ".annotated": "conll",
    ".csv": "csv",
    ".spacy": "docbin",
}


@dataclass(frozen=True)
class ConvertOptions:
    """What the readers need beyond the input path (the ``distil convert`` options)."""

    scheme: Scheme = "auto"
    n_sents: int = 1
    text_column: str | None = None
    label_column: str | None = None
    labels: Sequence[str] | None = None
    lang: str = "en"


def detect_format(path: Path) -> str:
    """The input format of ``path`` from its extension, or by looking at its first line.

    Raises :class:`ConversionError` saying to pass ``--format`` when it cannot tell.
    """
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    first = _first_line(path)
    if not first:
        raise ConversionError(empty_message(str(path)))
    if suffix in {".jsonl", ".json", ".ndjson"} and first[:1] in "[{" and looks_like_fire(_head(path)):
        return "fire"
    if suffix in {".jsonl", ".json", ".ndjson"} and first.startswith("["):
        raise ConversionError(json_array_message(str(path)))
    if suffix in {".jsonl", ".json", ".ndjson"} and first.startswith("{"):
        try:
            data = json.loads(first)
        except json.JSONDecodeError:
            data = {}
        if isinstance(data, dict) and "entities" in data and "spans" not in data:
            return "records"
        return "jsonl"
    if "\t" in first and first.split("\t", 1)[0].strip().isdigit() and "<e1>" in first:
        return "semeval"
    raise ConversionError(
        f"cannot tell the format of {path}; pass --format with one of {', '.join(INPUT_FORMATS)}"
    )


def _head(path: Path, size: int = 1 << 16) -> str:
    # The opening of the file: a FIRE split is one long line, so the first line may be the whole corpus.
    with path.open("rb") as stream:
        return stream.read(size).decode("utf-8-sig", errors="replace")


def _first_line(path: Path) -> str:
    first = first_content_line(path)
    return "" if first is None else first.decode("utf-8", errors="replace")


def make_nlp(lang: str) -> Language:
    """A blank pipeline whose tokenizer splits the texts that come without tokens."""
    try:
        return spacy.blank(lang)
    except (ImportError, KeyError, ValueError) as err:
        raise ConversionError(f"unknown language {lang!r} for the tokenizer ({err}); pass --lang with a spaCy code") from err


def read_input(
    path: Path, fmt: str, nlp: Language, report: ConversionReport, options: ConvertOptions
) -> Iterator[Doc]:
    """The Docs of an input file in format ``fmt``; skips and repairs go to ``report``."""
    if fmt == "conll":
        yield from read_conll(path, nlp.vocab, report, scheme=options.scheme, n_sents=options.n_sents)
    elif fmt == "csv":
        yield from read_csv(
            path,
            nlp,
            report,
            text_column=options.text_column,
            label_column=options.label_column,
            labels=options.labels,
        )
    elif fmt == "semeval":
        yield from read_semeval(path, nlp, report)
    elif fmt == "fire":
        yield from read_fire(path, nlp, report)
    elif fmt == "jsonl":
        yield from read_prodigy(path, nlp, report, labels=options.labels)
    elif fmt in {"docbin", "records"}:
        expected = ".spacy" if fmt == "docbin" else ".jsonl"
        annotation_dir = fmt == "records" and path.is_dir()
        if path.suffix.lower() != expected and not annotation_dir and not (
            fmt == "records" and path.suffix.lower() in {".json", ".ndjson"}
        ):
            raise ConversionError(f"{path}: --format {fmt} reads {expected} files")
        try:
            yield from read_docs(path, nlp)
        except CorpusError as err:
            raise ConversionError(str(err)) from err
    else:
        raise ConversionError(f"unknown input format {fmt!r}; use one of {', '.join(INPUT_FORMATS)}")


def convert(
    input_path: str | Path,
    output_path: str | Path,
    *,
    fmt: str | None = None,
    to: str = "distil",
    options: ConvertOptions | None = None,
    report: ConversionReport | None = None,
) -> ConversionReport:
    """Read ``input_path`` (format ``fmt`` or detected) and write every Doc to ``output_path``.

    ``to="distil"`` writes a ``.spacy`` DocBin or ``.jsonl`` records (by the output
    extension); ``to="prodigy"`` writes Prodigy-style JSONL; ``to="text"`` writes the
    raw texts, one a line (``.txt``). Lines that cannot be
    used are counted on the report; with a strict report the first one raises
    :class:`ConversionError` and nothing is written.
    """
    options = options or ConvertOptions()
    report = report or ConversionReport()
    source, target = Path(input_path), Path(output_path)
    if not source.exists():
        raise ConversionError(f"input file not found: {source}")
    if source.is_dir():
        # An annotation store (distil annotate --output DIR) exports to DocBin or records through its one read path.
        if not (source / RECORDS).exists():
            raise ConversionError(f"{source} is a folder; pass one input file or a `distil annotate` output directory")
        if (fmt or "records") != "records":
            raise ConversionError(f"{source} is an annotation directory: it converts with --format records")
        fmt = "records"
    if options.scheme not in SCHEMES:
        raise ConversionError(f"unknown IOB scheme {options.scheme!r}; use one of {', '.join(SCHEMES)}")
    if options.n_sents < 1:
        raise ConversionError(f"--n-sents must be at least 1, got {options.n_sents}")
    if to not in OUTPUT_FORMATS:
        raise ConversionError(f"unknown output format {to!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    out_suffix = target.suffix.lower()
    if to == "prodigy" and out_suffix != ".jsonl":
        raise ConversionError(f"{target}: Prodigy output is JSONL; give the output a .jsonl extension")
    if to == "text" and out_suffix != ".txt":
        raise ConversionError(f"{target}: text output is one document a line; give the output a .txt extension")
    if to == "distil" and out_suffix not in {".spacy", ".jsonl"}:
        raise ConversionError(
            f"{target}: unknown output format {target.suffix!r}; use .spacy (DocBin) or .jsonl (distil records)"
        )
    fmt = fmt or detect_format(source)
    if fmt != "docbin" and not source.is_dir():
        if is_binary(source):
            raise ConversionError(f"{source}: a binary file cannot be read as {fmt}; pass --format docbin for a .spacy")
        if first_content_line(source) is None:
            raise ConversionError(empty_message(str(source)))
    if fmt in {"jsonl", "records"} and not source.is_dir():
        try:
            check_json_lines(source)
        except InputError as err:
            raise ConversionError(str(err)) from None
    nlp = make_nlp(options.lang)
    # Read everything before writing: with --strict an error must not leave half a file behind.
    docs: list[Doc] = []
    try:
        for doc in read_input(source, fmt, nlp, report, options):
            docs.append(doc)
            report.add_doc(doc)
    except ConversionError:
        raise
    except Exception as err:
        # A reader bug or an input nobody foresaw: keep what was converted before it.
        _write(docs, target, to)
        raise ConversionError(
            f"{source}: reading stopped by an unexpected error ({err!r}); "
            f"the {len(docs)} documents read before it were written to {target}"
        ) from err
    if not docs:
        # An empty output would pass for a converted corpus downstream: say why nothing came out instead.
        reasons = "; ".join(
            f"{count} x {reason} (e.g. {', '.join(report.examples.get(reason, []))})"
            for reason, count in report.skips.most_common()
        )
        raise ConversionError(
            f"{source}: no documents converted, nothing written" + (f": {reasons}" if reasons else "")
        )
    _write(docs, target, to)
    return report


def _write(docs: list[Doc], target: Path, to: str) -> None:
    if to == "text":
        # Raw texts only (no annotations), e.g. to feed `distil annotate` without leaking gold labels.
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(" ".join(doc.text.splitlines()) + "\n" for doc in docs), encoding="utf-8")
        return
    if to == "prodigy":
        write_prodigy(docs, target)
    else:
        write_docs(docs, target)


def load_labels(path: str | Path | None) -> list[str] | None:
    """The label set of ``--labels FILE``, or ``None`` when no file is given."""
    return None if path is None else read_label_set(path)
