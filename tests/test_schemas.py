"""Task schemas: construction from config spellings, validation errors, label checks."""

from __future__ import annotations

import pytest

from distil.schemas import (
    NERSchema,
    RELSchema,
    SchemaError,
    TextCatSchema,
    ensure_schema,
    make_ner_schema,
    make_rel_schema,
    make_textcat_schema,
)


def test_labels_accept_list_table_and_records() -> None:
    as_list = make_ner_schema(["PERSON", "ORG"])
    as_table = make_ner_schema({"PERSON": "People", "ORG": "Companies"})
    as_records = make_ner_schema([{"name": "PERSON", "description": "People", "examples": ["Ada"]}, {"name": "ORG"}])
    assert as_list.label_names == as_table.label_names == as_records.label_names == ("PERSON", "ORG")
    assert as_table.get("PERSON").description == "People"
    assert as_records.get("PERSON").examples == ("Ada",)


def test_duplicate_and_empty_labels_are_rejected() -> None:
    with pytest.raises(SchemaError, match="duplicate labels: ORG"):
        make_ner_schema(["ORG", "PERSON", "ORG"])
    with pytest.raises(SchemaError, match="at least one label"):
        make_ner_schema([])
    with pytest.raises(SchemaError, match="whitespace"):
        make_ner_schema([" ORG"])


def test_check_labels_names_every_unknown_label() -> None:
    schema = make_ner_schema(["PERSON", "ORG"])
    schema.check_labels(["ORG"])
    with pytest.raises(SchemaError) as err:
        schema.check_labels(["ORG", "PERSN", "LOC"], what="rule patterns")
    message = str(err.value)
    assert "'LOC'" in message and "'PERSN'" in message and "rule patterns" in message
    assert "Known labels: PERSON, ORG" in message


def test_textcat_threshold_and_prediction() -> None:
    exclusive = make_textcat_schema(["a", "b", "c"])
    assert exclusive.predicted({"a": 0.2, "b": 0.7, "c": 0.1}) == ["b"]
    multi = make_textcat_schema(["a", "b", "c"], exclusive=False, threshold=0.3)
    assert multi.predicted({"a": 0.2, "b": 0.7, "c": 0.35}) == ["b", "c"]
    with pytest.raises(SchemaError, match="threshold"):
        make_textcat_schema(["a"], threshold=1.5)


def test_relation_schema_allows_by_entity_types_and_symmetry() -> None:
    schema = make_rel_schema(
        {
            "works_for": {"description": "employment", "head": ["PERSON"], "tail": ["ORG"]},
            "sibling": {"head": ["PERSON"], "tail": ["PERSON"], "symmetric": True},
            "near": {"head": ["LOC"], "tail": ["ORG"], "symmetric": True},
            "related": {},
        }
    )
    assert isinstance(schema, RELSchema)
    assert schema.allowed_labels("PERSON", "ORG") == ["works_for", "related"]
    assert schema.allowed_labels("ORG", "PERSON") == ["related"]
    # Symmetric labels allow the pair either way round.
    assert "near" in schema.allowed_labels("ORG", "LOC")
    assert schema.entity_labels == ("PERSON", "ORG", "LOC")
    assert schema.get("sibling").symmetric


def test_relation_spec_rejects_unknown_fields() -> None:
    with pytest.raises(SchemaError, match="heads"):
        make_rel_schema({"works_for": {"heads": ["PERSON"]}})


def test_ensure_schema_explains_how_to_declare_one() -> None:
    with pytest.raises(SchemaError, match=r"\[schemas.ner\]"):
        ensure_schema(None, NERSchema, "ner")
    built = ensure_schema({"labels": ["x"]}, TextCatSchema, "textcat")
    assert isinstance(built, TextCatSchema)
