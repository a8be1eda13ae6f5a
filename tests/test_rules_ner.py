"""``distil_ner_rules``: spaCy's EntityRuler checked against the NER schema, writing scored entities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

import distil
from distil.annotations import EntityPrediction, write_entities
from distil.components.rules.ner import NERRules
from distil.components.rules.rule_files import RuleFileError
from distil.pipeline.config import ConfigError
from distil.schemas import SchemaError

from .backends import write_jsonl


def component(nlp: Language, name: str) -> Any:
    """A pipeline component by name, typed loosely for attribute access."""
    return nlp.get_pipe(name)


REPO = Path(__file__).resolve().parent.parent
SCHEMA = {"@misc": "distil.NERSchema.v1", "labels": ["person", "corporation", "location"]}
PATTERNS: list[dict[str, Any]] = [
    {"label": "corporation", "pattern": "Apple"},
    {"label": "person", "pattern": "Tim Cook"},
    {"label": "location", "pattern": [{"LOWER": "cupertino"}]},
]


def make(config: dict | None = None, before: list[str] | None = None) -> Language:
    nlp = spacy.blank("en")
    for name in before or []:
        nlp.add_pipe(name)
    nlp.add_pipe("distil_ner_rules", name="ner", config={"schema": SCHEMA, **(config or {})})
    return nlp


def ents(doc: Doc) -> list[tuple[str, str, float | None]]:
    return [(e.text, e.label_, e._.score) for e in doc.ents]


def test_inline_patterns_write_scored_entities() -> None:
    nlp = make({"patterns": PATTERNS, "score": 0.8})
    assert isinstance(component(nlp, "ner"), NERRules)
    doc = nlp("Apple hired Tim Cook in cupertino.")
    assert ents(doc) == [("Apple", "corporation", 0.8), ("Tim Cook", "person", 0.8), ("cupertino", "location", 0.8)]
    assert distil.to_record(doc).entities[1].score == 0.8


def test_patterns_file_and_inline_are_combined(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", PATTERNS[1:])
    nlp = make({"patterns": PATTERNS[:1], "patterns_path": str(path)})
    assert [e[0] for e in ents(nlp("Apple hired Tim Cook in Cupertino"))] == ["Apple", "Tim Cook", "Cupertino"]


def test_phrase_matcher_attr_lower() -> None:
    assert ents(make({"patterns": PATTERNS})("apple and tim cook")) == []
    assert [e[0] for e in ents(make({"patterns": PATTERNS, "phrase_matcher_attr": "LOWER"})("apple and tim cook"))] == [
        "apple", "tim cook"]


def test_existing_entities_kept_unless_overwrite() -> None:
    for overwrite, expected in [(False, [("Tim", "person", 0.3)]), (True, [("Tim Cook", "person", 1.0)])]:
        nlp = make({"patterns": PATTERNS, "overwrite_ents": overwrite})
        doc = nlp.make_doc("Tim Cook spoke")
        write_entities(doc, [EntityPrediction(0, 3, "person", 0.3)])
        assert ents(nlp(doc)) == expected


def test_unknown_pattern_label_is_a_schema_error_naming_it() -> None:
    with pytest.raises(SchemaError, match=r"'ORG'.*Known labels: person, corporation, location"):
        make({"patterns": [*PATTERNS, {"label": "ORG", "pattern": "IBM"}]})


def test_unknown_label_in_config_file_names_config_and_label(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "p.jsonl", [{"label": "PERSON", "pattern": "Tim"}])
    text = (REPO / "configs/ner_rules.cfg").read_text()
    (tmp_path / "c.cfg").write_text(text)
    with pytest.raises(ConfigError, match=r"c\.cfg.*'PERSON'"):
        distil.load(tmp_path / "c.cfg", {"paths.ner_patterns": str(tmp_path / "p.jsonl")})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"label": "person"}', r"p\.jsonl:2: a pattern needs a 'label' and a 'pattern'"),
        ('{"label": "person", "pattern": 3}', r"p\.jsonl:2: 'pattern' must be a string"),
        ("not json", r"p\.jsonl:2: not valid JSON"),
        ('["a"]', r"p\.jsonl:2: each line must be a JSON object"),
    ],
)
def test_malformed_pattern_file_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(PATTERNS[0]) + "\n" + line + "\n")
    with pytest.raises(RuleFileError, match=message):
        make({"patterns_path": str(path)})


def test_missing_pattern_file_names_path_and_override(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match=r"not found: .*nope\.jsonl.*--paths"):
        make({"patterns_path": str(tmp_path / "nope.jsonl")})


def test_saved_pipeline_holds_patterns_without_the_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rules" / "p.jsonl", PATTERNS)
    nlp = make({"patterns_path": str(path), "score": 0.9}, before=["sentencizer"])
    text = "Apple hired Tim Cook in Cupertino."
    before = distil.to_record(nlp(text))
    nlp.to_disk(tmp_path / "model")
    shutil.rmtree(tmp_path / "rules")
    loaded = spacy.load(tmp_path / "model")
    assert distil.to_record(loaded(text)) == before
    assert len(before.entities) == 3
    # ... and the saved patterns are checked against the schema when read back.
    saved = tmp_path / "model" / "ner" / "patterns.jsonl"
    saved.write_text(saved.read_text() + json.dumps({"label": "ORG", "pattern": "IBM"}) + "\n")
    with pytest.raises(SchemaError, match="'ORG'"):
        spacy.load(tmp_path / "model")


def test_to_bytes_round_trip() -> None:
    nlp = make({"patterns": PATTERNS, "phrase_matcher_attr": "LOWER"})
    other = make({"phrase_matcher_attr": "LOWER"})
    component(other, "ner").from_bytes(component(nlp, "ner").to_bytes())
    assert ents(other("apple hired TIM COOK")) == ents(nlp("apple hired TIM COOK"))
    assert len(ents(other("apple hired TIM COOK"))) == 2


def test_score_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="score must be between 0 and 1"):
        make({"patterns": PATTERNS, "score": 2.0})


def test_shipped_wnut_config() -> None:
    nlp = distil.load(REPO / "configs/ner_rules.cfg")
    schema = component(nlp, "ner").schema
    assert schema.label_names == ("person", "location", "corporation", "group", "creative-work", "product")
    assert all(label.description for label in schema.labels)
    doc = nlp("Sundar Pichai showed the new iPhone in Berlin before watching Game of Thrones with the Lakers")
    assert {(e.text, e.label_) for e in doc.ents} >= {
        ("Sundar Pichai", "person"), ("iPhone", "product"), ("Berlin", "location"),
        ("Game of Thrones", "creative-work"), ("Lakers", "group"),
    }


SEEN: list[str] = []


@Language.component("distil_test_spy")
def _spy(doc: Doc) -> Doc:
    SEEN.append(doc.text)
    return doc


def test_phrase_patterns_do_not_run_earlier_components() -> None:
    # An LLM NER before the rules must not be called once per phrase pattern.
    SEEN.clear()
    nlp = spacy.blank("en")
    nlp.add_pipe("distil_test_spy")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("distil_ner_rules", name="ner", config={"schema": SCHEMA, "patterns": PATTERNS})
    assert SEEN == []
    assert [e.text for e in nlp("Hi Tim Cook").ents] == ["Tim Cook"]
    assert SEEN == ["Hi Tim Cook"]
