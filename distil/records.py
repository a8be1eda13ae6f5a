"""The typed JSON record of a Doc: the face of an annotated document for files and HTTP.

A record holds the text, entities with character offsets, relations by entity
index, categories and free-form meta (failures included). ``to_record`` and
``from_record`` are inverse for everything a distil backend writes.

Every record carries ``schema_version`` (:data:`RECORD_SCHEMA_VERSION`), so a
later change of the record's shape can be read back: a record without the
field is a version 1 record (every record written before the field existed
reads as before), and one from a newer distil is refused with a message
rather than misread.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .annotations import (
    EMPTY_SCORES_KEY,
    FAILURES_KEY,
    EntityPrediction,
    RelationPrediction,
    entity_score,
    write_cats,
    write_entities,
    write_relations,
)

META_KEY = "distil.meta"
# Where a record keeps the empty-answer probabilities of its backends (annotations.write_empty_score), by task.
EMPTY_SCORES_META = "empty_scores"
# The version of the record shape this distil writes; bump it (and read the older shapes) when the shape changes.
RECORD_SCHEMA_VERSION = 1


class EntityRecord(BaseModel):
    """An entity by character offsets into the record's text."""

    model_config = ConfigDict(extra="forbid")

    start: int = Field(ge=0, description="Character offset of the first character.")
    end: int = Field(ge=0, description="Character offset one past the last character.")
    label: str
    text: str = Field(description="The entity's text, text[start:end].")
    score: Optional[float] = None


class RelationRecord(BaseModel):
    """A relation between two entities, given by their index in ``entities``."""

    model_config = ConfigDict(extra="forbid")

    head: int = Field(ge=0)
    tail: int = Field(ge=0)
    label: str
    score: Optional[float] = None


class DocRecord(BaseModel):
    """One annotated document."""

    model_config = ConfigDict(extra="forbid")

    text: str
    entities: list[EntityRecord] = Field(default_factory=list)
    relations: list[RelationRecord] = Field(default_factory=list)
    cats: dict[str, float] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict, description="Free-form; 'failures' lists what failed.")
    schema_version: int = Field(
        default=RECORD_SCHEMA_VERSION,
        ge=1,
        description="The version of this record shape; a record without it is version 1.",
    )

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version > RECORD_SCHEMA_VERSION:
            raise ValueError(
                f"record schema_version {version} is newer than this distil reads (up to {RECORD_SCHEMA_VERSION}); "
                "upgrade distil to read it"
            )
        return version

    @model_validator(mode="after")
    def _consistent(self) -> DocRecord:
        for ent in self.entities:
            if ent.end > len(self.text) or ent.start >= ent.end:
                raise ValueError(f"entity {ent.label} has offsets {ent.start}-{ent.end} outside the text")
            if self.text[ent.start : ent.end] != ent.text:
                raise ValueError(
                    f"entity text {ent.text!r} does not match text[{ent.start}:{ent.end}] = "
                    f"{self.text[ent.start:ent.end]!r}"
                )
        for rel in self.relations:
            if rel.head >= len(self.entities) or rel.tail >= len(self.entities):
                raise ValueError(f"relation {rel.label} refers to entity {max(rel.head, rel.tail)}, "
                                 f"but there are {len(self.entities)} entities")
        return self


def to_record(doc: Doc) -> DocRecord:
    """The record of a Doc: entities, relations, cats, and meta with any failures."""
    entities = [
        EntityRecord(start=e.start_char, end=e.end_char, label=e.label_, text=e.text, score=entity_score(e))
        for e in doc.ents
    ]
    relations = [
        RelationRecord(head=r.head_index, tail=r.tail_index, label=r.label, score=r.score)
        for r in doc._.relations
    ]
    meta = dict(doc.user_data.get(META_KEY) or {})
    failures = doc.user_data.get(FAILURES_KEY)
    if failures:
        meta["failures"] = list(failures)
    empty = doc.user_data.get(EMPTY_SCORES_KEY)
    if empty:
        meta[EMPTY_SCORES_META] = dict(empty)
    return DocRecord(text=doc.text, entities=entities, relations=relations, cats=dict(doc.cats), meta=meta)


def from_record(record: DocRecord | dict[str, Any], nlp_or_vocab: Language | Vocab) -> Doc:
    """Build a Doc from a record, tokenised by ``nlp`` (or on whitespace, text unchanged, with a bare vocab).

    Entity offsets that do not fall on token boundaries are expanded to whole
    tokens; an entity that cannot be placed at all raises ``ValueError``.
    """
    rec = record if isinstance(record, DocRecord) else DocRecord.model_validate(record)
    if isinstance(nlp_or_vocab, Language):
        doc = nlp_or_vocab.make_doc(rec.text)
    else:
        # A rule-less tokenizer splits on whitespace and keeps the text byte for byte (offsets stay valid).
        doc = Tokenizer(nlp_or_vocab)(rec.text)
    write_entities(doc, [EntityPrediction(e.start, e.end, e.label, e.score) for e in rec.entities], overlap="longest")
    if len(doc.ents) != len(rec.entities):
        raise ValueError(
            f"record entities overlap or do not align with tokens: {len(rec.entities)} given, "
            f"{len(doc.ents)} placed in {rec.text[:60]!r}"
        )
    # Entities are written sorted by position; map record indices to doc.ents indices.
    order = sorted(range(len(rec.entities)), key=lambda i: rec.entities[i].start)
    position = {record_index: ent_index for ent_index, record_index in enumerate(order)}
    write_relations(doc, [RelationPrediction(position[r.head], position[r.tail], r.label, r.score) for r in rec.relations])
    if rec.cats:
        write_cats(doc, rec.cats)
    meta = dict(rec.meta)
    failures = meta.pop("failures", None)
    if failures:
        doc.user_data[FAILURES_KEY] = list(failures)
    empty = meta.pop(EMPTY_SCORES_META, None)
    if isinstance(empty, dict) and empty:
        doc.user_data[EMPTY_SCORES_KEY] = {str(k): float(v) for k, v in empty.items()}
    if meta:
        doc.user_data[META_KEY] = meta
    return doc


def record_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`DocRecord` (what ``distil schema`` prints)."""
    schema = DocRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "distil DocRecord"
    return schema


def dumps(record: DocRecord) -> str:
    """One JSON line for a record (no ASCII escaping, no trailing newline)."""
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False)
