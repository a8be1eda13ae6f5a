"""Read CoNLL/IOB files (``token<TAB>tag`` or the 4-column CoNLL-2003 layout) into Docs.

One token a line, the token in the first column and the entity tag in the last;
blank (or whitespace-only) lines end a sentence and ``-DOCSTART-`` lines end a
document. Tags are IOB1 or IOB2 (detected per file, or given). Both schemes are
decoded the same way, by IOB1 semantics: ``I-X`` continues an ``X`` entity and
starts one when there is none to continue. In an IOB2 file such an ``I-X`` is
invalid, so it is repaired that way and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from ...annotations import write_entities
from .conversion_report import ConversionReport, read_lines

Scheme = Literal["auto", "iob1", "iob2"]
SCHEMES: tuple[str, ...] = ("auto", "iob1", "iob2")

_TAG = re.compile(r"^(?:O|([BI])-(\S+))$")


@dataclass
class _Token:
    word: str
    tag: str
    line: int


@dataclass
class _Sentence:
    tokens: list[_Token] = field(default_factory=list)
    starts_document: bool = False


def _split(line: str, tabbed: bool) -> list[str]:
    return [part.strip() for part in line.split("\t")] if tabbed else line.split()


def _sentences(path: Path, report: ConversionReport) -> list[_Sentence]:
    source = str(path)
    sentences: list[_Sentence] = []
    current = _Sentence()
    columns: int | None = None
    tabbed = False
    seen_content = False

    def close() -> None:
        nonlocal current
        if current.tokens:
            sentences.append(current)
            current = _Sentence()

    for number, line in read_lines(path, report):
        if not line.strip():
            close()
            continue
        seen_content = True
        if line.split()[0] == "-DOCSTART-":
            close()
            current.starts_document = True
            continue
        if columns is None:
            tabbed = "\t" in line
            columns = len(_split(line, tabbed))
            if columns < 2:
                report.skip(source, number, "wrong column count", "1 column; need a token and a tag")
                columns = None
                continue
        parts = _split(line, tabbed)
        if len(parts) != columns:
            report.skip(source, number, "wrong column count", f"{len(parts)} columns, expected {columns}")
            continue
        word, tag = parts[0], parts[-1]
        if not word:
            report.skip(source, number, "empty token")
            continue
        current.tokens.append(_Token(word, tag, number))
    close()
    if not seen_content:
        report.skip(source, 1, "empty file")
    return sentences


def _is_continuation(previous: str | None, label: str) -> bool:
    return previous is not None and previous == label


def detect_scheme(sentences: list[_Sentence]) -> Literal["iob1", "iob2"]:
    """IOB1 when some ``I-X`` starts an entity and no ``B-X`` does; IOB2 otherwise.

    In IOB1, ``B-`` only separates two adjacent entities of one type, so a ``B-``
    after ``O`` (or after another type) is evidence of IOB2, and an ``I-`` that
    starts an entity is evidence of IOB1.
    """
    i_starts = b_starts = False
    for sentence in sentences:
        previous: str | None = None
        for token in sentence.tokens:
            match = _TAG.match(token.tag)
            if match is None or match.group(1) is None:
                previous = None
                continue
            prefix, label = match.group(1), match.group(2)
            if not _is_continuation(previous, label):
                if prefix == "I":
                    i_starts = True
                else:
                    b_starts = True
            previous = label
    return "iob1" if i_starts and not b_starts else "iob2"


def _entities(
    sentence: _Sentence, offset: int, scheme: str, source: str, report: ConversionReport
) -> list[tuple[int, int, str]]:
    """Token spans ``(start, end, label)`` of one sentence, ``offset`` tokens into its Doc."""
    spans: list[tuple[int, int, str]] = []
    start: int | None = None
    label: str | None = None
    for i, token in enumerate(sentence.tokens):
        match = _TAG.match(token.tag)
        if match is None:
            report.repair(source, token.line, "invalid tag read as O", repr(token.tag))
            prefix, tag_label = None, None
        else:
            prefix, tag_label = match.group(1), match.group(2)
        continues = prefix == "I" and tag_label == label
        if start is not None and label is not None and not continues:
            spans.append((offset + start, offset + i, label))
            start, label = None, None
        if prefix is not None and tag_label is not None and not continues:
            if prefix == "I" and scheme == "iob2":
                report.repair(source, token.line, "I- tag without B- in IOB2 (starts an entity)", token.tag)
            start, label = i, tag_label
    if start is not None and label is not None:
        spans.append((offset + start, offset + len(sentence.tokens), label))
    return spans


def read_conll(
    path: str | Path,
    vocab: Vocab,
    report: ConversionReport,
    *,
    scheme: Scheme = "auto",
    n_sents: int = 1,
) -> Iterator[Doc]:
    """Yield one Doc per sentence (or per ``n_sents`` sentences) of a CoNLL/IOB file.

    Sentences are never grouped across a ``-DOCSTART-`` line. Tokens are joined by
    single spaces, sentence starts are set, and entities are written with
    :func:`~distil.annotations.write_entities`. Bad lines are counted on
    ``report`` (or raise when it is strict).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown IOB scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if n_sents < 1:
        raise ValueError(f"n_sents must be at least 1, got {n_sents}")
    path = Path(path)
    source = str(path)
    sentences = _sentences(path, report)
    used = detect_scheme(sentences) if scheme == "auto" else scheme
    groups: list[list[_Sentence]] = []
    for sentence in sentences:
        if not groups or sentence.starts_document or len(groups[-1]) >= n_sents:
            groups.append([])
        groups[-1].append(sentence)
    for group in groups:
        words: list[str] = []
        sent_starts: list[bool | int | None] = []
        spans: list[tuple[int, int, str]] = []
        for sentence in group:
            spans.extend(_entities(sentence, len(words), used, source, report))
            words.extend(token.word for token in sentence.tokens)
            sent_starts.extend([True] + [False] * (len(sentence.tokens) - 1))
        spaces = [True] * (len(words) - 1) + [False]
        doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
        write_entities(doc, [Span(doc, start, end, label=label) for start, end, label in spans])
        yield doc
