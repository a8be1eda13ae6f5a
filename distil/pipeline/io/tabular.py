"""Read text-classification CSV files (``text,label``) into Docs with one-hot ``doc.cats``.

The header is detected (a first row naming the text column); without one the
text is the first column and the label the second. A first row of bare names
that matches no known column (``query,intent_name``) is refused rather than read
as data, with a message naming the expected columns and the options that map
them. The label set is the one
given (a JSON list, as BANKING77's ``categories.json``) or else every label seen
in the file, in order of first appearance; each Doc gets a score for every
label, 1.0 for its own and 0.0 for the others.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import write_cats
from ...textfile import read_text
from .conversion_report import ConversionError, ConversionReport, read_lines

LABEL_COLUMN_NAMES: tuple[str, ...] = ("label", "category", "intent", "labels", "class")
# A cell that could be a column name: an identifier-like word, no sentence punctuation or spaces.
_HEADER_CELL = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}")


def read_label_set(path: str | Path) -> list[str]:
    """The full label set from a JSON list of strings (or a text file, one label a line)."""
    path = Path(path)
    if not path.exists():
        raise ConversionError(f"label file not found: {path}")
    try:
        text = read_text(path)
    except UnicodeDecodeError as err:
        raise ConversionError(f"{path}: invalid UTF-8 at byte {err.start}") from err
    if path.suffix.lower() == ".json":
        try:
            labels = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConversionError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise ConversionError(f"{path}: expected a JSON list of label strings")
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ConversionError(f"{path}: the label set is empty")
    if len(set(labels)) != len(labels):
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        raise ConversionError(f"{path}: duplicate labels {', '.join(duplicates)}")
    return list(labels)


def _column(header: Sequence[str], wanted: str | None, defaults: Sequence[str], what: str, source: str) -> int:
    names = [name.strip().lower() for name in header]
    candidates = [wanted] if wanted is not None else list(defaults)
    for candidate in candidates:
        if candidate.lower() in names:
            return names.index(candidate.lower())
    if wanted is not None and wanted.isdigit() and int(wanted) < len(header):
        return int(wanted)
    raise ConversionError(
        f"{source}: no {what} column {' or '.join(repr(c) for c in candidates)} in the header "
        f"({', '.join(header)}); pass --{what}-column NAME"
    )


def _unknown_header(source: str, number: int, row: Sequence[str]) -> None:
    """Refuse a first row that looks like a header naming no known column, saying how to name them."""
    names = [cell.strip() for cell in row]
    label_hint = names[1] if len(names) > 1 else "NAME"
    raise ConversionError(
        f"{source}:{number}: the first row ({', '.join(names)}) looks like a header but names no known column; "
        f"expected a text column named 'text' and a label column named one of {', '.join(LABEL_COLUMN_NAMES)}. "
        f"Rename them, or pass --text-column {names[0]} --label-column {label_hint} "
        "(for a file without a header, --text-column 0 --label-column 1)"
    )


def _rows(path: Path, report: ConversionReport) -> Iterator[tuple[int, list[str]]]:
    numbered = read_lines(path, report)
    current = [0]

    def lines() -> Iterator[str]:
        for number, line in numbered:
            current[0] = number
            yield line

    reader = csv.reader(lines())
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            report.skip(str(path), current[0], "malformed CSV row", str(err))
            continue
        yield current[0], row


def read_csv(
    path: str | Path,
    nlp: Language,
    report: ConversionReport,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    labels: Sequence[str] | None = None,
) -> Iterator[Doc]:
    """Yield a Doc per row of a ``text,label`` CSV, tokenised by ``nlp``, with one-hot ``doc.cats``.

    Columns are picked by header name (``text_column``/``label_column``, or ``text``
    and the first of :data:`LABEL_COLUMN_NAMES`), or by 0-based index when the file
    has no header. Rows with a wrong column count, an empty text or a label outside
    ``labels`` are counted on ``report`` and left out.
    """
    path = Path(path)
    source = str(path)
    good: list[tuple[int, str, str]] = []
    text_at = label_at = width = -1
    # A first row of bare names that matched no known column: a header we did not recognise, or data?
    suspect: tuple[int, list[str]] | None = None
    # One pass in file order, so that a strict read stops at the first bad line.
    for number, row in _rows(path, report):
        if not any(cell.strip() for cell in row):
            continue
        if width < 0:
            width = len(row)
            first = [cell.strip().lower() for cell in row]
            header_names = {n.lower() for n in (text_column or "text", label_column, *LABEL_COLUMN_NAMES) if n}
            if header_names & set(first):
                text_at = _column(row, text_column, ("text",), "text", source)
                label_at = _column(row, label_column, LABEL_COLUMN_NAMES, "label", source)
                continue
            text_at = int(text_column) if text_column is not None and text_column.isdigit() else 0
            label_at = int(label_column) if label_column is not None and label_column.isdigit() else 1
            if text_column is None and label_column is None and all(_HEADER_CELL.fullmatch(c.strip()) for c in row):
                suspect = (number, row)
            if max(text_at, label_at) >= width:
                raise ConversionError(
                    f"{source}:{number}: no header and only {width} column(s); "
                    "the text and label columns must exist (see --text-column, --label-column)"
                )
        if len(row) != width:
            report.skip(source, number, "wrong column count", f"{len(row)} columns, expected {width}")
            continue
        text, label = row[text_at], row[label_at].strip()
        if not text.strip():
            report.skip(source, number, "empty text")
            continue
        if not label:
            report.skip(source, number, "empty label")
            continue
        good.append((number, text, label))
    if width < 0:
        report.skip(source, 1, "empty file")
        return
    if suspect is not None and max(text_at, label_at) < len(suspect[1]):
        first_label = suspect[1][label_at].strip()
        others = {label for number, _, label in good if number != suspect[0]}
        # A real first row of data shares its label with other rows (or is in the label set).
        if first_label not in others and (labels is None or first_label not in labels):
            _unknown_header(source, suspect[0], suspect[1])
    label_set = list(labels) if labels is not None else list(dict.fromkeys(label for _, _, label in good))
    known = set(label_set)
    for number, text, label in good:
        if label not in known:
            report.skip(source, number, "label not in the label set", repr(label))
            continue
        doc = nlp.make_doc(text)
        write_cats(doc, {name: 1.0 if name == label else 0.0 for name in label_set})
        yield doc
