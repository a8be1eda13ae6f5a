"""Read SemEval-2010 Task 8 files (``TRAIN_FILE.TXT``, ``TEST_FILE_FULL.TXT``) into Docs.

Each example is a line ``ID<TAB>"sentence with <e1>..</e1> and <e2>..</e2>"``,
then its relation line (``Cause-Effect(e2,e1)`` or ``Other``), a ``Comment:``
line and a blank line. The dataset convention every distil part relies on:

- the two marked nominals become entities labelled ``NOMINAL``;
- ``Label(e1,e2)`` becomes a relation ``Label`` with head e1 and tail e2, and
  ``Label(e2,e1)`` one with head e2 and tail e1;
- ``Other`` becomes no relation;
- the sentence id goes to the record meta (``doc.user_data[records.META_KEY]["id"]``).

A file without relation lines (the unlabelled ``TEST_FILE.TXT``) gives Docs
with the entities and no relations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import EntityPrediction, RelationPrediction, write_entities, write_relations
from ...records import META_KEY
from .conversion_report import ConversionReport, read_lines

ENTITY_LABEL = "NOMINAL"
NO_RELATION = "Other"
RELATION_LABELS: tuple[str, ...] = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)

_SENTENCE = re.compile(r'^\s*(\d+)\t\s*"(.*)"\s*$')
_RELATION = re.compile(r"^\s*([A-Za-z][\w-]*)\((e[12]),(e[12])\)\s*$")
_MARKED = re.compile(r"^(.*?)<e1>(.*?)</e1>(.*?)<e2>(.*?)</e2>(.*)$")
_MARKED_REVERSED = re.compile(r"^(.*?)<e2>(.*?)</e2>(.*?)<e1>(.*?)</e1>(.*)$")


@dataclass
class _Example:
    id: str
    sentence: str
    line: int
    relation: str | None = None
    relation_line: int = 0


def make_segmented_doc(nlp: Language, pieces: list[str]) -> Doc:
    """A Doc of ``"".join(pieces)`` with a token boundary at every piece boundary.

    Each piece is tokenised on its own, so that an entity given as a piece is
    always a whole number of tokens, whatever the tokenizer would do with the
    characters around it (``<e1>audit</e1>s``).
    """
    words: list[str] = []
    spaces: list[bool] = []
    for piece in pieces:
        if not piece:
            continue
        for token in nlp.make_doc(piece):
            if token.is_space and token.text == " " and words and not spaces[-1]:
                spaces[-1] = True
                continue
            words.append(token.text)
            spaces.append(bool(token.whitespace_))
    return Doc(nlp.vocab, words=words, spaces=spaces)


def _examples(path: Path, report: ConversionReport) -> Iterator[_Example]:
    source = str(path)
    pending: _Example | None = None
    seen_content = False
    for number, line in read_lines(path, report):
        if not line.strip():
            continue
        seen_content = True
        sentence = _SENTENCE.match(line)
        if sentence is not None:
            if pending is not None:
                yield pending
            pending = _Example(sentence.group(1), sentence.group(2), number)
            continue
        stripped = line.strip()
        if stripped.startswith("Comment"):
            continue
        if pending is not None and pending.relation is None and (
            stripped == NO_RELATION or _RELATION.match(stripped) is not None
        ):
            pending.relation, pending.relation_line = stripped, number
            continue
        report.skip(source, number, "unrecognised line", stripped[:60])
    if pending is not None:
        yield pending
    if not seen_content:
        report.skip(source, 1, "empty file")


def _doc(example: _Example, nlp: Language, source: str, report: ConversionReport) -> Doc | None:
    forward = _MARKED.match(example.sentence)
    backward = None if forward is not None else _MARKED_REVERSED.match(example.sentence)
    match = forward or backward
    if match is None or any(tag in "".join(match.groups()) for tag in ("<e1>", "</e1>", "<e2>", "</e2>")):
        report.skip(source, example.line, "sentence without exactly one <e1> and one <e2>", f"id {example.id}")
        return None
    before, first, between, second, after = match.groups()
    if not first.strip() or not second.strip():
        report.skip(source, example.line, "empty marked nominal", f"id {example.id}")
        return None
    doc = make_segmented_doc(nlp, [before, first, between, second, after])
    first_start = len(before)
    second_start = first_start + len(first) + len(between)
    write_entities(
        doc,
        [
            EntityPrediction(first_start, first_start + len(first), ENTITY_LABEL),
            EntityPrediction(second_start, second_start + len(second), ENTITY_LABEL),
        ],
    )
    if len(doc.ents) != 2:
        report.skip(source, example.line, "marked nominals could not be placed on tokens", f"id {example.id}")
        return None
    # doc.ents is in text order; e1 is index 0 unless the file marked e2 first.
    index = {"e1": 0, "e2": 1} if forward is not None else {"e1": 1, "e2": 0}
    if example.relation is not None and example.relation != NO_RELATION:
        relation = _RELATION.match(example.relation)
        assert relation is not None  # _examples only keeps relation lines that match
        label, head, tail = relation.groups()
        if head == tail:
            report.skip(source, example.relation_line, "relation from a nominal to itself", example.relation)
            return None
        write_relations(doc, [RelationPrediction(index[head], index[tail], label)])
    doc.user_data[META_KEY] = {"id": example.id}
    return doc


def read_semeval(path: str | Path, nlp: Language, report: ConversionReport) -> Iterator[Doc]:
    """Yield one Doc per SemEval-2010 Task 8 example, following the dataset convention above.

    Lines that fit no part of the format, sentences without both nominals and
    relations of a nominal to itself are counted on ``report`` and left out.
    """
    path = Path(path)
    source = str(path)
    for example in _examples(path, report):
        doc = _doc(example, nlp, source, report)
        if doc is not None:
            yield doc
