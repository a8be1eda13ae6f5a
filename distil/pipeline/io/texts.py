"""Read raw input texts: a text file (one document a line), JSONL or CSV with a text field, or stdin.

Bad lines (invalid UTF-8, malformed JSON, no text field, empty text) do not stop
the read: each is yielded as a :class:`Skip` naming the source and line, so the
command can count and report them while the good documents go through.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

from spacy.tokens import Doc, Span


@dataclass(frozen=True)
class TextItem:
    """One input document: its text, where it came from, and any extra fields of its record.

    ``doc`` is set when the input was an annotated corpus whose entities are
    given to the pipeline (relation extraction over known entities).
    """

    text: str
    source: str
    line: int
    meta: dict[str, Any] = field(default_factory=dict)
    doc: Optional[Doc] = None

    def pipeline_input(self) -> Union[Doc, str]:
        """What to run the pipeline on: a fresh copy of the given Doc, or the text."""
        return self.doc.copy() if self.doc is not None else self.text


@dataclass(frozen=True)
class Skip:
    """An input line that could not be used, and why."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


InputItem = Union[TextItem, Skip]


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        yield number, raw.rstrip(b"\r\n")


def parse_line(raw: bytes, source: str, number: int, *, jsonl: bool, text_field: str = "text") -> InputItem:
    """Decode and parse one input line into a :class:`TextItem` or a :class:`Skip`."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Skip(source, number, f"invalid UTF-8 at byte {err.start}")
    if jsonl:
        if not line.strip():
            return Skip(source, number, "empty line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            return Skip(source, number, f"malformed JSON: {err.msg} at column {err.colno}")
        if not isinstance(record, dict) or text_field not in record:
            return Skip(source, number, f"no {text_field!r} field")
        text = record.pop(text_field)
        if not isinstance(text, str):
            return Skip(source, number, f"{text_field!r} is not a string")
        meta = record
    else:
        text, meta = line, {}
    if not text.strip():
        return Skip(source, number, "empty text")
    return TextItem(text=text, source=source, line=number, meta=meta)


def read_texts(path: Union[str, Path], *, text_field: str = "text") -> Iterator[InputItem]:
    """Yield the documents of an input file (``-`` for stdin), one per line.

    A ``.jsonl``/``.json`` file, or stdin whose first line starts with ``{``,
    is read as JSONL records with ``text_field``; a ``.csv``/``.tsv`` file by its
    ``text_field`` column (other columns become meta); anything else as plain text.
    """
    if str(path) == "-":
        yield from _read_stream(sys.stdin.buffer, "<stdin>", None, text_field)
        return
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    if path.suffix.lower() in {".csv", ".tsv"}:
        yield from _read_csv(path, text_field, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        return
    jsonl = path.suffix.lower() in {".jsonl", ".json", ".ndjson"}
    with path.open("rb") as stream:
        yield from _read_stream(stream, str(path), jsonl, text_field)


def _read_stream(stream: BinaryIO, source: str, jsonl: bool | None, text_field: str) -> Iterator[InputItem]:
    for number, raw in _lines(stream):
        if jsonl is None:
            if not raw.strip():
                yield Skip(source, number, "empty line")
                continue
            jsonl = raw.lstrip().startswith(b"{")
        yield parse_line(raw, source, number, jsonl=jsonl, text_field=text_field)


def _read_csv(path: Path, text_field: str, delimiter: str) -> Iterator[InputItem]:
    """Rows of a CSV with a header; ``text_field`` names the text column, other columns go to meta."""
    source = str(path)
    # surrogateescape keeps the rows around a bad byte readable; the bad row is skipped below.
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            raise ValueError(
                f"{source}: no {text_field!r} column in the header {reader.fieldnames}; name the text column "
                f"with --text-field"
            )
        for row in reader:
            number = reader.line_num
            text = row.get(text_field)
            if text is None:
                yield Skip(source, number, f"no {text_field!r} value")
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                yield Skip(source, number, "invalid UTF-8")
                continue
            if not text.strip():
                yield Skip(source, number, "empty text")
                continue
            meta = {k: v for k, v in row.items() if k != text_field and k is not None}
            yield TextItem(text=text, source=source, line=number, meta=meta)


def from_docs(docs: Iterable[Doc], source: str) -> Iterator[InputItem]:
    """Input items from an annotated corpus, keeping only the entities (and meta) of each Doc.

    Relations and categories are dropped so that a corpus with gold labels can
    be re-annotated (e.g. by an LLM relation teacher over the given entities)
    without the gold leaking into the output.
    """
    for number, doc in enumerate(docs, start=1):
        if not doc.text.strip():
            yield Skip(source, number, "empty text")
            continue
        given = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        given.ents = [Span(given, e.start, e.end, label=e.label_) for e in doc.ents]
        meta = dict(doc.user_data.get("distil.meta") or {})
        yield TextItem(text=doc.text, source=source, line=number, meta=meta, doc=given)


def from_arguments(texts: Iterable[str]) -> Iterator[InputItem]:
    """Texts given on the command line, as input items."""
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            yield Skip("<argv>", number, "empty text")
        else:
            yield TextItem(text=text, source="<argv>", line=number)
