"""What a reviewer may write: the edits of the page, and the check every written record passes.

The page keeps the document it is correcting as a record (the JSON record of
:mod:`distil.records`) and sends it with each edit; :func:`apply_edit` returns
the new record, so the server keeps no draft and a restart loses no more than
the edits of the open page. Every record the server writes (an accepted or
corrected decision) passes :func:`check_record` first:

- entities sit on token boundaries of ``nlp``'s tokenizer (a span that cuts a
  token is refused, naming the tokens there; the page's text selection is
  snapped to whole tokens by :func:`snap_span` before it becomes an entity);
- entities do not overlap, relations join two different entities;
- every entity, relation and category label is in the config's schema
  (:meth:`distil.pipeline.review.ReviewSchema.problems`, the check of ``review import``).

A refusal is a :class:`EditError` whose message names the problem and the fix;
the HTTP layer answers it with 422.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import DistilError
from ..pipeline.io.labelstudio import chosen_categories
from ..pipeline.review import ReviewSchema
from ..records import DocRecord, EntityRecord, RelationRecord, from_record


class EditError(DistilError, ValueError):
    """A write the schema or the tokens do not allow; the message says what and how to fix it."""


class AddEntity(BaseModel):
    """Add an entity over the characters ``start``-``end`` (snapped to whole tokens)."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["add_entity"]
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str


class RemoveEntity(BaseModel):
    """Remove entity ``index`` and the relations that use it."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["remove_entity"]
    index: int = Field(ge=0)


class RelabelEntity(BaseModel):
    """Give entity ``index`` another label."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["relabel_entity"]
    index: int = Field(ge=0)
    label: str


class AddRelation(BaseModel):
    """Add a relation from entity ``head`` to entity ``tail``."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["add_relation"]
    head: int = Field(ge=0)
    tail: int = Field(ge=0)
    label: str


class RemoveRelation(BaseModel):
    """Remove relation ``index``."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["remove_relation"]
    index: int = Field(ge=0)


class SetCategory(BaseModel):
    """Choose category ``label`` (exclusive schema: the only one; multi-label: toggle it)."""

    model_config = ConfigDict(extra="forbid")
    op: Literal["set_category"]
    label: str


Edit = Annotated[
    Union[AddEntity, RemoveEntity, RelabelEntity, AddRelation, RemoveRelation, SetCategory],
    Field(discriminator="op"),
]


def _tokens_near(doc: Doc, start: int, end: int) -> str:
    """The tokens around a character range, for a message: ``'Tim' 0-3, 'Cook' 4-8``."""
    near = [t for t in doc if t.idx < end + 1 and t.idx + len(t) > start - 1][:6]
    return ", ".join(f"{t.text!r} {t.idx}-{t.idx + len(t)}" for t in near) or "none"


def check_record(record: DocRecord, text: str, nlp: Language, schema: ReviewSchema, *, labels: bool = True) -> Doc:
    """The Doc of ``record`` if the server may write it for a document whose text is ``text``; else :class:`EditError`.

    ``labels=False`` skips the schema check of the labels already in the
    record: a draft may still hold a teacher's label outside the schema,
    which the reviewer is about to fix (the decision checks it).
    """
    if record.text != text:
        raise EditError("the record's text is not the document's text; send the document's text unchanged")
    doc = nlp.make_doc(text)
    previous: Optional[EntityRecord] = None
    for ent in sorted(record.entities, key=lambda e: (e.start, e.end)):
        if doc.char_span(ent.start, ent.end) is None:
            raise EditError(
                f"entity {ent.text!r} ({ent.label}) at {ent.start}-{ent.end} is not on token boundaries "
                f"(tokens there: {_tokens_near(doc, ent.start, ent.end)}); give whole tokens"
            )
        if previous is not None and ent.start < previous.end:
            raise EditError(
                f"entity {ent.text!r} ({ent.label}) overlaps {previous.text!r} ({previous.label}); keep one of them"
            )
        previous = ent
    for rel in record.relations:
        if rel.head == rel.tail:
            raise EditError(f"relation {rel.label!r} joins entity {rel.head} to itself; choose two entities")
    for label, value in record.cats.items():
        if not 0.0 <= value <= 1.0:
            raise EditError(f"category {label!r} has score {value}; scores go from 0 to 1")
    try:
        checked = from_record(record, nlp)
    except ValueError as err:
        raise EditError(f"the record cannot be placed on the text: {err}") from None
    if labels:
        problems = schema.problems(checked)
        if problems:
            raise EditError("; ".join(problems))
    return checked


def snap_span(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """A selection's character range widened to whole tokens, with surrounding whitespace left out."""
    text = doc.text
    start, end = max(0, min(start, end)), min(len(text), max(start, end))
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        raise EditError("the selection holds no text; select the words of the entity")
    span = doc.char_span(start, end, alignment_mode="expand")
    if span is None:
        raise EditError(f"the selection {start}-{end} does not cover a token; select the words of the entity")
    return span.start_char, span.end_char


def _allowed(label: str, allowed: Optional[tuple[str, ...]], what: str, schema: ReviewSchema) -> None:
    if allowed is not None and label not in allowed:
        known = ", ".join(allowed) if allowed else f"none: the config declares no {what} labels"
        raise EditError(f"{what} label {label!r} is not in the schema of {schema.source} (known: {known})")


def _entity(record: DocRecord, index: int) -> EntityRecord:
    if index >= len(record.entities):
        raise EditError(f"there is no entity {index} (the document has {len(record.entities)}); reload the page")
    return record.entities[index]


def _sorted(record: DocRecord, entities: list[EntityRecord], relations: list[RelationRecord]) -> DocRecord:
    """``record`` with these entities in text order and the relations' indices following them."""
    order = sorted(range(len(entities)), key=lambda i: (entities[i].start, entities[i].end))
    position = {old: new for new, old in enumerate(order)}
    rels = [RelationRecord(head=position[r.head], tail=position[r.tail], label=r.label, score=r.score)
            for r in relations]
    return record.model_copy(update={"entities": [entities[i] for i in order], "relations": rels})


def apply_edit(record: DocRecord, edit: Edit, nlp: Language, schema: ReviewSchema,
               category_labels: tuple[str, ...]) -> DocRecord:
    """The record after one edit of the page; :class:`EditError` when the edit is not allowed.

    ``category_labels`` are the categories a pick in an exclusive schema sets
    (to 1.0 for the pick, 0.0 for the others): the schema's, and any the
    record already has.
    """
    doc = check_record(record, record.text, nlp, schema, labels=False)
    entities = list(record.entities)
    relations = list(record.relations)
    if isinstance(edit, AddEntity):
        _allowed(edit.label, schema.entities, "entity", schema)
        start, end = snap_span(doc, edit.start, edit.end)
        for other in entities:
            if start < other.end and other.start < end:
                raise EditError(
                    f"{record.text[start:end]!r} overlaps the entity {other.text!r} ({other.label}); remove that "
                    "entity first (click its ×)"
                )
        entities.append(EntityRecord(start=start, end=end, label=edit.label, text=record.text[start:end]))
        return _sorted(record, entities, relations)
    if isinstance(edit, RemoveEntity):
        _entity(record, edit.index)
        del entities[edit.index]
        shift = {old: old - (old > edit.index) for old in range(len(record.entities))}
        relations = [
            RelationRecord(head=shift[r.head], tail=shift[r.tail], label=r.label, score=r.score)
            for r in relations if edit.index not in (r.head, r.tail)
        ]
        return record.model_copy(update={"entities": entities, "relations": relations})
    if isinstance(edit, RelabelEntity):
        _allowed(edit.label, schema.entities, "entity", schema)
        old = _entity(record, edit.index)
        # The teacher's score was for the old label; the reviewer's label has none.
        entities[edit.index] = old.model_copy(update={"label": edit.label, "score": None})
        return record.model_copy(update={"entities": entities})
    if isinstance(edit, AddRelation):
        _allowed(edit.label, schema.relations, "relation", schema)
        head, tail = _entity(record, edit.head), _entity(record, edit.tail)
        if edit.head == edit.tail:
            raise EditError("a relation joins two different entities; click the head, then another entity")
        if any((r.head, r.tail, r.label) == (edit.head, edit.tail, edit.label) for r in relations):
            raise EditError(f"{head.text!r} → {edit.label} → {tail.text!r} is already there")
        relations.append(RelationRecord(head=edit.head, tail=edit.tail, label=edit.label))
        return record.model_copy(update={"relations": relations})
    if isinstance(edit, RemoveRelation):
        if edit.index >= len(relations):
            raise EditError(f"there is no relation {edit.index} (the document has {len(relations)}); reload the page")
        del relations[edit.index]
        return record.model_copy(update={"relations": relations})
    _allowed(edit.label, schema.categories, "category", schema)
    cats = dict(record.cats)
    if schema.exclusive:
        cats = {label: 1.0 if label == edit.label else 0.0 for label in dict.fromkeys([*category_labels, *cats])}
    else:
        cats[edit.label] = 0.0 if cats.get(edit.label, 0.0) >= 0.5 else 1.0
    return record.model_copy(update={"cats": cats})


def same_answer(one: DocRecord, other: DocRecord, exclusive: bool) -> bool:
    """Whether two records make the same decisions: entity spans and labels, relations, chosen categories.

    Scores are not compared: a reviewer who accepts a document as it is
    gave the teacher's answer, whatever the teacher's certainty was.
    """
    def decisions(record: DocRecord) -> tuple[object, ...]:
        ents = [(e.start, e.end, e.label) for e in record.entities]
        rels = {(ents[r.head][:2], ents[r.tail][:2], r.label) for r in record.relations}
        return set(ents), rels, set(chosen_categories(record.cats, not exclusive))

    return decisions(one) == decisions(other)
