"""Read FIRE (FInancial Relation Extraction) files into Docs: typed entities on tokens, relations by entity index.

A FIRE split (``fire_train.json``, ``fire_dev.json``, ``fire_test.json``) is one
JSON array; a file of one such object a line (JSONL) is read the same way. Each
instance is::

    {"tokens": ["Shares", "of", "Tesla", ...],
     "entities": [{"type": "Company", "start": 2, "end": 3, ...}, ...],   # token offsets, end exclusive
     "relations": [{"type": "Propertyof", "head": 0, "tail": 1}, ...],     # by 0-based index in "entities"
     "orig_id": 1059, "duration": 28}

The conversion every distil part relies on:

- one Doc per instance, its tokens kept as they are and joined by single spaces
  (FIRE has no untokenised text); empty and whitespace-only tokens (a few
  non-breaking spaces lost upstream, and stray line breaks) are dropped and
  counted as repairs, the entity offsets moved accordingly;
- entities keep their FIRE type as label; relations keep their type, head →
  tail, and go through :func:`~distil.annotations.write_relations` by the index
  of each entity in ``doc.ents``;
- ``orig_id`` becomes the record meta id (``doc.user_data[records.META_KEY]["id"]``).

What ``doc.ents`` cannot hold is counted, never silently dropped: of two
overlapping (nested) entities the longer is kept and the other skipped, with
every relation that refers to it; a relation of an entity to itself, or with an
index outside the entity list, is skipped. A skip's ``file:N`` names the N-th
instance (1-based), which for JSONL is also the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from ...annotations import RelationPrediction, write_entities, write_relations
from ...records import META_KEY
from .conversion_report import ConversionError, ConversionReport, read_lines

ENTITY_TYPES: tuple[str, ...] = (
    "Company",
    "FinancialEntity",
    "Quantity",
    "Date",
    "Money",
    "Location",
    "Action",
    "GeopoliticalEntity",
    "Product",
    "Designation",
    "Sector",
    "Person",
    "BusinessUnit",
)
RELATION_TYPES: tuple[str, ...] = (
    "ActionBuy",
    "ActionSell",
    "Actionin",
    "Designation",
    "Employeeof",
    "Locatedin",
    "Productof",
    "Propertyof",
    "Quantity",
    "Sector",
    "Subsidiaryof",
    "Value",
    "ValueChangeDecreaseby",
    "ValueChangeIncreaseby",
    "Valuein",
)


class _Skip(Exception):
    """An instance that cannot be converted at all (the reason is what the report groups by)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def looks_like_fire(head: str) -> bool:
    """Whether the start of a file (a JSON array or JSON Lines) is a FIRE instance.

    A FIRE instance has ``tokens`` as a list of strings and no ``text``, which
    tells it apart from distil records and Prodigy tasks (both have ``text``).
    Only the opening of the first object is looked at, so detection stays cheap
    on a large one-line array.
    """
    stripped = head.lstrip()
    if stripped.startswith("["):
        stripped = stripped[1:].lstrip()
    if not stripped.startswith("{"):
        return False
    try:
        first, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        # The first object did not fit in the head: fall back on its opening key.
        return stripped[1:].lstrip().startswith('"tokens"') and '"text"' not in stripped[:200]
    tokens = first.get("tokens") if isinstance(first, dict) else None
    return (
        isinstance(tokens, list)
        and all(isinstance(token, str) for token in tokens)
        and "text" not in first
        and "entities" in first
    )


def _instances(path: Path, report: ConversionReport) -> Iterator[tuple[int, Any]]:
    """``(number, instance)`` for each element of a JSON array, or each line of a JSONL file."""
    source = str(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConversionError(f"{source}: not valid JSON ({err.msg}, line {err.lineno} column {err.colno})") from err
        yield from enumerate(data, start=1)
        return
    seen = False
    for number, line in read_lines(path, report):
        if not line.strip():
            continue
        seen = True
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            report.skip(source, number, "malformed JSON", f"{err.msg}, column {err.colno}")
    if not seen:
        report.skip(source, 1, "empty file")


def _int(value: Any) -> int | None:
    # bool is an int subclass; a true/false offset is a broken file, not token 1/0.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _doc(instance: Any, number: int, nlp: Language, source: str, report: ConversionReport) -> Doc:
    if not isinstance(instance, dict):
        raise _Skip("not a JSON object")
    ident = instance.get("orig_id", instance.get("id"))
    where = f"orig_id {ident}" if ident is not None else ""
    tokens = instance.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise _Skip("no 'tokens' list of strings", where)
    # new_index[i]: where token i lands once empty and whitespace-only tokens are dropped (-1: dropped).
    new_index: list[int] = []
    words: list[str] = []
    for position, token in enumerate(tokens):
        if token.strip():
            new_index.append(len(words))
            words.append(token)
        else:
            new_index.append(-1)
            report.repair(source, number, "empty or whitespace token dropped", f"{where}, token {position} {token!r}")
    if not words:
        raise _Skip("no tokens", where)
    doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    raw_entities = instance.get("entities") or []
    raw_relations = instance.get("relations") or []
    if not isinstance(raw_entities, list) or not isinstance(raw_relations, list):
        raise _Skip("'entities' or 'relations' is not a list", where)
    spans = _entity_spans(raw_entities, tokens, new_index, doc, number, where, source, report)
    write_entities(doc, list(spans.values()), overlap="longest")
    kept = {(ent.start, ent.end, ent.label_): k for k, ent in enumerate(doc.ents)}
    # FIRE entity index -> doc.ents index (None: the entity was skipped, with a reason already counted).
    ent_index: dict[int, int | None] = {}
    used: set[int] = set()
    for fire_index, span in spans.items():
        found = kept.get((span.start, span.end, span.label_))
        ent_index[fire_index] = found
        if found is None:
            report.skip(source, number, "overlapping (nested) entity", f"{where}, entity {fire_index} {span.text!r}")
        elif found in used:
            report.repair(source, number, "duplicate entity merged", f"{where}, entity {fire_index} {span.text!r}")
        else:
            used.add(found)
    relations = _relations(raw_relations, len(raw_entities), ent_index, number, where, source, report)
    write_relations(doc, relations)
    if ident is not None:
        doc.user_data[META_KEY] = {"id": str(ident)}
    return doc


def _entity_spans(
    raw_entities: list[Any],
    tokens: list[str],
    new_index: list[int],
    doc: Doc,
    number: int,
    where: str,
    source: str,
    report: ConversionReport,
) -> dict[int, Span]:
    """The Doc span of every usable FIRE entity, by its FIRE index; the others are counted as skips."""
    spans: dict[int, Span] = {}
    for k, entity in enumerate(raw_entities):
        label = entity.get("type") if isinstance(entity, dict) else None
        start = _int(entity.get("start")) if isinstance(entity, dict) else None
        end = _int(entity.get("end")) if isinstance(entity, dict) else None
        if not isinstance(label, str) or not label or start is None or end is None:
            report.skip(source, number, "entity without type, start and end", f"{where}, entity {k}")
            continue
        if not 0 <= start < end <= len(tokens):
            report.skip(source, number, "entity span outside the tokens", f"{where}, entity {k} [{start}, {end})")
            continue
        kept = [new_index[i] for i in range(start, end) if new_index[i] >= 0]
        if not kept:
            report.skip(source, number, "entity on dropped tokens only", f"{where}, entity {k}")
            continue
        spans[k] = Span(doc, kept[0], kept[-1] + 1, label=label)
    return spans


def _relations(
    raw_relations: list[Any],
    n_entities: int,
    ent_index: dict[int, int | None],
    number: int,
    where: str,
    source: str,
    report: ConversionReport,
) -> list[RelationPrediction]:
    """The relations between kept entities, re-indexed onto ``doc.ents``; the others are counted as skips."""
    out: list[RelationPrediction] = []
    seen: set[tuple[int, int, str]] = set()
    for relation in raw_relations:
        label = relation.get("type") if isinstance(relation, dict) else None
        head = _int(relation.get("head")) if isinstance(relation, dict) else None
        tail = _int(relation.get("tail")) if isinstance(relation, dict) else None
        if not isinstance(label, str) or not label or head is None or tail is None:
            report.skip(source, number, "relation without type, head and tail", where)
            continue
        detail = f"{where}, {label}({head}, {tail})"
        if not (0 <= head < n_entities and 0 <= tail < n_entities):
            report.skip(source, number, "relation index outside the entities", detail)
            continue
        if head == tail:
            report.skip(source, number, "relation from an entity to itself", detail)
            continue
        doc_head, doc_tail = ent_index.get(head), ent_index.get(tail)
        if doc_head is None or doc_tail is None:
            report.skip(source, number, "relation to a skipped entity", detail)
            continue
        if (doc_head, doc_tail, label) in seen:
            report.repair(source, number, "duplicate relation kept once", detail)
            continue
        seen.add((doc_head, doc_tail, label))
        out.append(RelationPrediction(doc_head, doc_tail, label))
    return out


def read_fire(path: str | Path, nlp: Language, report: ConversionReport) -> Iterator[Doc]:
    """Yield one Doc per FIRE instance of ``path`` (a JSON array, or one object a line).

    Instances that cannot be converted, and the entities and relations that a
    Doc cannot hold, are counted on ``report`` (or raise when it is strict);
    the rest of the file is still converted. A file that is not valid JSON at
    all raises :class:`ConversionError`.
    """
    path = Path(path)
    source = str(path)
    for number, instance in _instances(path, report):
        try:
            yield _doc(instance, number, nlp, source, report)
        except _Skip as skip:
            report.skip(source, number, skip.reason, skip.detail or None)
