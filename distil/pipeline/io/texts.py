"""Read raw input texts: a text file (one document a line), JSONL or CSV with a text field, or stdin.

:func:`read_inputs` (what ``run`` and ``annotate`` use) also takes an annotated
corpus (``.spacy`` or distil records) as documents. A missing, empty, binary or
JSON-array input is refused before the first document with an
:class:`~distil.textfile.InputError` naming the file and the fix.
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

from spacy.language import Language
from spacy.tokens import Doc, Span

from ...corpus import read_docs
from ...records import META_KEY
from ...textfile import (
    InputError,
    empty_message,
    first_content_line,
    is_binary,
    json_array_message,
    numbered_lines,
    open_text,
)

CSV_SUFFIXES = frozenset({".csv", ".tsv"})
JSONL_SUFFIXES = frozenset({".jsonl", ".json", ".ndjson"})
RECORD_FIELDS = frozenset({"text", "entities", "relations", "cats", "meta"})


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
        if not isinstance(record, dict):
            return Skip(source, number, "not a JSON object")
        if text_field not in record:
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
    """The documents of an input file (``-`` for stdin), one per line.

    A ``.jsonl``/``.json`` file, or stdin whose first line starts with ``{``,
    is read as JSONL records with ``text_field``; a ``.csv``/``.tsv`` file by its
    ``text_field`` column (other columns become meta); anything else as plain text.
    The file is checked before the first document is read, so a missing, empty,
    binary or JSON-array input raises :class:`InputError` at once, naming the
    file and the fix; bad lines later on are yielded as :class:`Skip`.
    """
    if str(path) == "-":
        return _read_stream(sys.stdin.buffer, "<stdin>", None, text_field)
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give one input file")
    suffix = path.suffix.lower()
    if suffix == ".spacy" or is_binary(path):
        what = "a DocBin (.spacy)" if suffix == ".spacy" else "a binary file"
        raise InputError(
            f"{source}: {what} is not text; give a text file (one document a line), JSONL with a "
            f"{text_field!r} field or CSV with a {text_field!r} column (distil run and annotate read .spacy corpora)"
        )
    first = first_content_line(path)
    if first is None:
        raise InputError(empty_message(source))
    if suffix in CSV_SUFFIXES:
        delimiter = "\t" if suffix == ".tsv" else ","
        _check_csv_header(path, text_field, delimiter)
        return _read_csv(path, text_field, delimiter)
    jsonl = suffix in JSONL_SUFFIXES
    if jsonl and first.startswith(b"["):
        raise InputError(json_array_message(source))
    return _read_file(path, jsonl, text_field)


def _read_file(path: Path, jsonl: bool, text_field: str) -> Iterator[InputItem]:
    with path.open("rb") as stream:
        yield from _read_stream(stream, str(path), jsonl, text_field)


def _read_stream(stream: BinaryIO, source: str, jsonl: bool | None, text_field: str) -> Iterator[InputItem]:
    seen_content = False
    for number, raw in numbered_lines(stream):
        if raw.strip():
            seen_content = True
        if jsonl is None:
            if not raw.strip():
                yield Skip(source, number, "empty line")
                continue
            start = raw.lstrip()
            # Sniffing stdin: a line that opens a JSON array of objects is JSON, not a text to annotate.
            if start.startswith(b"[{") or start.rstrip() == b"[":
                raise InputError(json_array_message(source))
            jsonl = start.startswith(b"{")
        yield parse_line(raw, source, number, jsonl=jsonl, text_field=text_field)
    if not seen_content:
        raise InputError(empty_message(source))


def _check_csv_header(path: Path, text_field: str, delimiter: str) -> None:
    """Refuse a CSV whose header lacks the text column, before any row is read."""
    with open_text(path, errors="surrogateescape") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), None)
    if header is None:
        raise InputError(empty_message(str(path)))
    if text_field not in header:
        raise InputError(
            f"{path}:1: no {text_field!r} column in the header ({', '.join(header)}); name the text column "
            f"{text_field!r} or pass --text-field with one of these names"
        )


def _read_csv(path: Path, text_field: str, delimiter: str) -> Iterator[InputItem]:
    """Rows of a CSV with a header; ``text_field`` names the text column, other columns go to meta."""
    source = str(path)
    # surrogateescape keeps the rows around a bad byte readable; the bad row is skipped below.
    with open_text(path, errors="surrogateescape") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        rows = 0
        for row in reader:
            rows += 1
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
    if rows == 0:
        raise InputError(f"{source}: input is empty (a header and no rows)")


def is_records_file(path: Union[str, Path]) -> bool:
    """Whether a JSONL file holds distil records (what ``distil convert``/``annotate`` write) rather than texts.

    A record has ``text``, ``entities`` and only record fields; a Prodigy task or
    a plain ``{"text": ...}`` line does not.
    """
    path = Path(path)
    if path.suffix.lower() not in JSONL_SUFFIXES or not path.is_file() or is_binary(path):
        return False
    first = first_content_line(path)
    if first is None:
        return False
    try:
        data = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "text" in data and "entities" in data and set(data) <= RECORD_FIELDS


def read_inputs(path: Union[str, Path], nlp: Language, *, text_field: str = "text") -> Iterator[InputItem]:
    """The input documents of ``run`` and ``annotate``: texts (see :func:`read_texts`) or an annotated corpus.

    A ``.spacy`` DocBin or a JSONL file of distil records is read as documents
    whose entities are given to the pipeline (see :func:`from_docs`), so a
    relation pipeline can run over known entities; gold relations and
    categories are not passed on. Everything else is read as texts.
    """
    if str(path) != "-" and (Path(path).suffix.lower() == ".spacy" or is_records_file(path)):
        path = Path(path)
        if not path.exists():
            raise InputError(f"input file not found: {path}")
        return from_docs(read_docs(path, nlp), str(path))
    return read_texts(path, text_field=text_field)


def from_docs(docs: Iterable[Doc], source: str) -> Iterator[InputItem]:
    """Input items from an annotated corpus, keeping only the entities (and meta) of each Doc.

    Relations and categories are dropped so that a corpus with gold labels can
    be re-annotated (e.g. by an LLM relation teacher over the given entities)
    without the gold leaking into the output.
    """
    number = 0
    for number, doc in enumerate(docs, start=1):
        if not doc.text.strip():
            yield Skip(source, number, "empty text")
            continue
        given = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        given.ents = [Span(given, e.start, e.end, label=e.label_) for e in doc.ents]
        meta = dict(doc.user_data.get(META_KEY) or {})
        yield TextItem(text=doc.text, source=source, line=number, meta=meta, doc=given)
    if number == 0:
        raise InputError(f"{source}: input is empty (the corpus holds no documents)")


def from_arguments(texts: Iterable[str]) -> Iterator[InputItem]:
    """Texts given on the command line, as input items."""
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            yield Skip("<argv>", number, "empty text")
        else:
            yield TextItem(text=text, source="<argv>", line=number)
