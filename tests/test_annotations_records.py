"""The canonical writers and the JSON record: overlap rules, schema checks, round trips."""

from __future__ import annotations

import json

import pytest
from spacy.language import Language
from spacy.tokens import Doc

from distil.annotations import (
    EntityPrediction,
    Failure,
    Relation,
    RelationPrediction,
    record_failure,
    write_cats,
    write_entities,
    write_relations,
)
from distil.corpus import CorpusError, read_docs, write_docs
from distil.records import RECORD_SCHEMA_VERSION, DocRecord, dumps, from_record, record_json_schema, to_record
from distil.schemas import SchemaError, make_rel_schema, make_textcat_schema

TEXT = "Apple hired Tim Cook in Cupertino."


def annotated(nlp: Language) -> Doc:
    doc = nlp(TEXT)
    write_entities(
        doc,
        [EntityPrediction(0, 5, "ORG", 0.9), EntityPrediction(12, 20, "PERSON", 0.8), EntityPrediction(24, 33, "LOC")],
    )
    write_relations(doc, [RelationPrediction(1, 0, "works_for", 0.7)])
    write_cats(doc, {"tech": 0.8, "bank": 0.2})
    record_failure(doc, Failure("textcat", "textcat", "invalid_json", "not JSON", raw="{oops"))
    return doc


def test_entities_carry_scores_and_resolve_overlaps_by_score(nlp: Language) -> None:
    doc = nlp(TEXT)
    write_entities(
        doc,
        [
            EntityPrediction(12, 20, "PERSON", 0.6),
            EntityPrediction(16, 20, "ORG", 0.9),  # overlaps "Tim Cook", higher score wins
            EntityPrediction(24, 33, "LOC", 0.5),
        ],
    )
    assert [(e.text, e.label_, e._.score) for e in doc.ents] == [("Cook", "ORG", 0.9), ("Cupertino", "LOC", 0.5)]
    doc2 = nlp(TEXT)
    write_entities(doc2, [EntityPrediction(12, 20, "PERSON", 0.6), EntityPrediction(16, 20, "ORG", 0.9)], overlap="longest")
    assert [e.text for e in doc2.ents] == ["Tim Cook"]


def test_entities_expand_to_token_boundaries_and_drop_bad_offsets(nlp: Language) -> None:
    doc = nlp(TEXT)
    write_entities(doc, [EntityPrediction(1, 4, "ORG"), EntityPrediction(30, 99, "LOC"), EntityPrediction(5, 5, "X")])
    assert [e.text for e in doc.ents] == ["Apple"]


def test_keep_existing_entities_win(nlp: Language) -> None:
    doc = nlp(TEXT)
    write_entities(doc, [EntityPrediction(12, 20, "PERSON", 0.5)])
    write_entities(doc, [EntityPrediction(16, 20, "ORG", 0.99), EntityPrediction(0, 5, "ORG")], keep_existing=True)
    assert [(e.text, e.label_) for e in doc.ents] == [("Apple", "ORG"), ("Tim Cook", "PERSON")]
    assert doc.ents[1]._.score == 0.5


def test_label_check_in_writer(nlp: Language) -> None:
    doc = nlp(TEXT)
    with pytest.raises(SchemaError, match="'MISC'"):
        write_entities(doc, [EntityPrediction(0, 5, "MISC")], labels=["ORG"])


def test_relations_typed_accessor_symmetry_and_dedup(nlp: Language) -> None:
    schema = make_rel_schema({"works_for": {"head": ["PERSON"], "tail": ["ORG"]}, "near": {"symmetric": True}})
    doc = annotated(nlp)
    write_relations(
        doc,
        [
            RelationPrediction(1, 0, "works_for", 0.4),
            RelationPrediction(1, 0, "works_for", 0.7),
            RelationPrediction(2, 0, "near", 0.3),  # symmetric: stored with the earlier entity as head
        ],
        schema,
    )
    rels = doc._.relations
    assert all(isinstance(r, Relation) for r in rels)
    assert [(r.head.text, r.tail.text, r.label, r.score) for r in rels] == [
        ("Tim Cook", "Apple", "works_for", 0.7),
        ("Apple", "Cupertino", "near", 0.3),
    ]
    with pytest.raises(SchemaError, match="'likes'"):
        write_relations(doc, [RelationPrediction(0, 1, "likes")], schema)
    with pytest.raises(ValueError, match="itself"):
        write_relations(doc, [RelationPrediction(0, 0, "near")], schema)
    with pytest.raises(IndexError):
        write_relations(doc, [RelationPrediction(0, 7, "near")], schema)


def test_relations_follow_entity_rewrites(nlp: Language) -> None:
    doc = annotated(nlp)
    assert len(doc._.relations) == 1
    # Replacing the entities removes relations whose ends are gone.
    write_entities(doc, [EntityPrediction(0, 5, "ORG")])
    assert doc._.relations == []


def test_cats_get_every_schema_label_and_reject_unknown(nlp: Language) -> None:
    schema = make_textcat_schema(["tech", "bank", "sport"])
    doc = nlp(TEXT)
    write_cats(doc, {"tech": 0.8}, schema)
    assert doc.cats == {"tech": 0.8, "bank": 0.0, "sport": 0.0}
    with pytest.raises(SchemaError, match="'cooking'"):
        write_cats(doc, {"cooking": 1.0}, schema)


def test_record_round_trip_and_json_schema(nlp: Language) -> None:
    doc = annotated(nlp)
    record = to_record(doc)
    assert record.entities[1].text == "Tim Cook" and record.entities[1].score == 0.8
    assert record.relations[0].head == 1 and record.relations[0].tail == 0
    assert record.meta["failures"][0]["kind"] == "invalid_json"
    data = json.loads(record.model_dump_json())
    assert to_record(from_record(data, nlp)) == record
    schema = record_json_schema()
    assert set(schema["required"]) == {"text"}
    assert {"entities", "relations", "cats", "meta"} <= set(schema["properties"])


def test_records_carry_a_schema_version_and_older_records_still_read(nlp: Language, tmp_path) -> None:
    written = json.loads(dumps(to_record(annotated(nlp))))
    assert written["schema_version"] == RECORD_SCHEMA_VERSION == 1
    schema = record_json_schema()["properties"]["schema_version"]
    assert schema["default"] == 1 and schema["type"] == "integer" and "version" in schema["description"]
    # A record written before the field existed is a version 1 record, in memory and in a corpus file.
    older = {k: v for k, v in written.items() if k != "schema_version"}
    assert DocRecord.model_validate(older).schema_version == 1
    path = tmp_path / "older.jsonl"
    path.write_text(json.dumps(older) + "\n", encoding="utf-8")
    (doc,) = read_docs(path, nlp)
    assert [e.text for e in doc.ents] == [e.text for e in annotated(nlp).ents]
    # A record from a newer distil is refused with a message, not misread.
    with pytest.raises(ValueError, match="schema_version 2 is newer"):
        DocRecord.model_validate({**written, "schema_version": 2})
    path.write_text(json.dumps({**written, "schema_version": 2}) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"older\.jsonl:1: .*newer than this distil reads"):
        list(read_docs(path, nlp))


def test_record_rejects_inconsistent_offsets() -> None:
    with pytest.raises(ValueError, match="does not match"):
        DocRecord.model_validate({"text": "abc def", "entities": [{"start": 0, "end": 3, "label": "X", "text": "abd"}]})
    with pytest.raises(ValueError, match="refers to entity"):
        DocRecord.model_validate(
            {
                "text": "abc def",
                "entities": [{"start": 0, "end": 3, "label": "X", "text": "abc"}],
                "relations": [{"head": 0, "tail": 1, "label": "r"}],
            }
        )


def test_from_record_maps_unsorted_entity_indices(nlp: Language) -> None:
    record = {
        "text": TEXT,
        "entities": [
            {"start": 12, "end": 20, "label": "PERSON", "text": "Tim Cook"},
            {"start": 0, "end": 5, "label": "ORG", "text": "Apple"},
        ],
        "relations": [{"head": 0, "tail": 1, "label": "works_for"}],
    }
    doc = from_record(record, nlp)
    assert [(r.head.text, r.tail.text) for r in doc._.relations] == [("Tim Cook", "Apple")]


@pytest.mark.parametrize("suffix", [".spacy", ".jsonl"])
def test_corpus_round_trip(nlp: Language, tmp_path, suffix: str) -> None:
    docs = [annotated(nlp), nlp("Nothing here.")]
    path = tmp_path / f"corpus{suffix}"
    assert write_docs(docs, path) == 2
    again = list(read_docs(path, nlp))
    assert [to_record(d) for d in again] == [to_record(d) for d in docs]


def test_corpus_errors_name_file_and_line(nlp: Language, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "fine"}\n{"text": 3}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2"):
        list(read_docs(bad, nlp))
    with pytest.raises(CorpusError, match="unknown corpus format"):
        list(read_docs(tmp_path / "x.csv", nlp)) if (tmp_path / "x.csv").write_text("a") else None
    with pytest.raises(CorpusError, match="not found"):
        list(read_docs(tmp_path / "missing.spacy", nlp))


def test_from_record_with_a_bare_vocab_keeps_text_and_offsets(nlp: Language) -> None:
    record = {"text": "Tim  Cook\tvisited Paris.", "entities": [{"start": 18, "end": 23, "label": "LOC", "text": "Paris"}]}
    doc = from_record(record, nlp.vocab)
    assert doc.text == record["text"]
    # Whitespace tokens: "Paris." is one token, so the entity expands to it instead of shifting.
    assert [(e.start_char, e.end_char, e.text) for e in doc.ents] == [(18, 24, "Paris.")]
