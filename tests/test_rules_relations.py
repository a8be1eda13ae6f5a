"""``distil_rel_rules``: trigger/pattern rules between typed entities of one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

import distil
from distil.components.rules.rule_files import RuleFileError
from distil.records import from_record, to_record
from distil.schemas import SchemaError

from .backends import write_jsonl


def component(nlp: Language, name: str) -> Any:
    """A pipeline component by name, typed loosely for attribute access."""
    return nlp.get_pipe(name)


REPO = Path(__file__).resolve().parent.parent
SCHEMA = {
    "@misc": "distil.RELSchema.v1",
    "labels": {
        "works_for": {"head": ["person"], "tail": ["corporation"]},
        "located_in": {"head": ["person", "corporation"], "tail": ["location"]},
        "near": {"symmetric": True, "head": ["location"], "tail": ["location"]},
    },
}


def make(rules: list[dict[str, Any]] | None = None, sentences: bool = False, **config: Any) -> Language:
    nlp = spacy.blank("en")
    if sentences:
        nlp.add_pipe("sentencizer")
    nlp.add_pipe("distil_rel_rules", name="rel", config={"schema": SCHEMA, "rules": rules, **config})
    return nlp


def doc_with(nlp: Language, text: str, *ents: tuple[str, str]) -> Doc:
    """A Doc with given entities (as gold input), passed through the pipeline."""
    entities = []
    for mention, label in ents:
        start = text.index(mention)
        entities.append({"start": start, "end": start + len(mention), "label": label, "text": mention})
    return nlp(from_record({"text": text, "entities": entities}, nlp))


def rels(doc: Doc) -> list[tuple[str, str, str, float | None]]:
    return [(r.head.text, r.label, r.tail.text, r.score) for r in doc._.relations]


def test_direction_decides_head_and_tail() -> None:
    nlp = make([
        {"label": "works_for", "triggers": ["hired"], "direction": "tail_first", "score": 0.9},
        {"label": "works_for", "triggers": "ceo of"},
    ])
    assert rels(doc_with(nlp, "Apple hired Tim Cook", ("Apple", "corporation"), ("Tim Cook", "person"))) == [
        ("Tim Cook", "works_for", "Apple", 0.9)]
    assert rels(doc_with(nlp, "Tim Cook is the CEO of Apple", ("Tim Cook", "person"), ("Apple", "corporation"))) == [
        ("Tim Cook", "works_for", "Apple", 1.0)]


def test_entity_labels_must_fit_rule_and_schema() -> None:
    nlp = make([{"label": "works_for", "triggers": "hired", "direction": "tail_first"}])
    # Right words, wrong types: the schema allows works_for only person -> corporation.
    assert rels(doc_with(nlp, "Paris hired Berlin", ("Paris", "location"), ("Berlin", "location"))) == []
    nlp = make([{"label": "located_in", "triggers": "in", "head": "person"}])
    assert rels(doc_with(nlp, "Apple in Cupertino", ("Apple", "corporation"), ("Cupertino", "location"))) == []
    assert rels(doc_with(nlp, "Tim in Cupertino", ("Tim", "person"), ("Cupertino", "location"))) == [
        ("Tim", "located_in", "Cupertino", 1.0)]


def test_max_distance_whole_gap_and_entities_between() -> None:
    text = "Tim Cook , who joined long ago , works for Apple"
    ents = (("Tim Cook", "person"), ("Apple", "corporation"))
    assert rels(doc_with(make([{"label": "works_for", "triggers": "works for", "max_distance": 3}]), text, *ents)) == []
    assert len(rels(doc_with(make([{"label": "works_for", "triggers": "works for"}]), text, *ents))) == 1
    whole = make([{"label": "located_in", "triggers": "in", "whole_gap": True}])
    assert rels(doc_with(whole, "Tim lives in Paris", ("Tim", "person"), ("Paris", "location"))) == []
    assert len(rels(doc_with(whole, "Tim in Paris", ("Tim", "person"), ("Paris", "location")))) == 1
    text = "Tim Cook and Apple in Cupertino"
    three = (("Tim Cook", "person"), ("Apple", "corporation"), ("Cupertino", "location"))
    loose = make([{"label": "located_in", "triggers": "in", "entities_between": True}])
    strict = make([{"label": "located_in", "triggers": "in"}])
    assert {r[0] for r in rels(doc_with(loose, text, *three))} == {"Tim Cook", "Apple"}
    assert {r[0] for r in rels(doc_with(strict, text, *three))} == {"Apple"}


def test_pairs_must_share_a_sentence() -> None:
    rules = [{"label": "located_in", "triggers": "moved"}]
    text = "Tim Cook moved. Paris is nice."
    ents = (("Tim Cook", "person"), ("Paris", "location"))
    assert len(rels(doc_with(make(rules), text, *ents))) == 1
    assert rels(doc_with(make(rules, sentences=True), text, *ents)) == []


def test_token_pattern_rule() -> None:
    nlp = make([{"label": "works_for", "pattern": [{"LOWER": {"IN": ["ceo", "cto"]}}, {"LOWER": "of"}]}])
    ents = (("Sundar", "person"), ("Google", "corporation"))
    assert len(rels(doc_with(nlp, "Sundar , CTO of Google", *ents))) == 1
    assert rels(doc_with(nlp, "Sundar , fan of Google", *ents)) == []
    # Matches outside the gap do not count.
    assert rels(doc_with(nlp, "CEO of Sundar and Google", *ents)) == []


def test_one_label_per_pair_keeps_the_best_rule() -> None:
    rules = [
        {"label": "located_in", "triggers": "in", "head": "corporation", "score": 0.4},
        {"label": "near", "triggers": "in", "score": 0.6},
    ]
    text = "Paris in Berlin"
    ents = (("Paris", "location"), ("Berlin", "location"))
    assert rels(doc_with(make(rules), text, *ents)) == [("Paris", "near", "Berlin", 0.6)]
    many = make([{"label": "near", "triggers": "in", "score": 0.6},
                 {"label": "near", "triggers": "in", "direction": "tail_first", "score": 0.5}],
                one_label_per_pair=False)
    # Symmetric: both directions are one fact, stored head-before-tail with the best score.
    assert rels(doc_with(many, text, *ents)) == [("Paris", "near", "Berlin", 0.6)]


def test_relations_with_entities_from_an_upstream_component() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("distil_ner_rules", name="ner", config={
        "schema": {"@misc": "distil.NERSchema.v1", "labels": ["person", "corporation", "location"]},
        "patterns": [{"label": "person", "pattern": "Tim Cook"}, {"label": "corporation", "pattern": "Apple"}]})
    nlp.add_pipe("distil_rel_rules", name="rel", config={
        "schema": SCHEMA, "rules": [{"label": "works_for", "triggers": "hired", "direction": "tail_first"}]})
    record = to_record(nlp("Apple hired Tim Cook."))
    assert [(r.head, r.label, r.tail) for r in record.relations] == [(1, "works_for", 0)]


def test_lemma_rules_need_lemmas() -> None:
    nlp = make([{"label": "works_for", "triggers": "hire", "attr": "LEMMA", "direction": "tail_first"}])
    with pytest.raises(ValueError, match="no lemmas; add a lemmatizer"):
        doc_with(nlp, "Apple hired Tim", ("Apple", "corporation"), ("Tim", "person"))
    doc = from_record({"text": "Apple hired Tim", "entities": [
        {"start": 0, "end": 5, "label": "corporation", "text": "Apple"},
        {"start": 12, "end": 15, "label": "person", "text": "Tim"}]}, nlp)
    for token, lemma in zip(doc, ["apple", "hire", "tim"], strict=True):
        token.lemma_ = lemma
    assert rels(nlp(doc)) == [("Tim", "works_for", "Apple", 1.0)]


def test_unknown_label_is_a_schema_error_naming_it() -> None:
    with pytest.raises(SchemaError, match=r"'employs'.*Known labels: works_for, located_in, near"):
        make([{"label": "employs", "triggers": "hired"}])


def test_rule_head_tail_the_schema_forbids_is_an_error_at_load() -> None:
    with pytest.raises(SchemaError, match=r"'works_for'.*location -> corporation.*head \['person'\]"):
        make([{"label": "works_for", "triggers": "in", "head": "location", "tail": "corporation"}])
    with pytest.raises(SchemaError, match=r"any -> location"):
        make([{"label": "works_for", "triggers": "in", "tail": "location"}])
    # Symmetric labels may name their types either way round.
    make([{"label": "near", "triggers": "by", "head": "location", "tail": "location"}])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"label": "near"}, "needs 'triggers' and/or a token 'pattern'"),
        ({"label": "near", "triggers": "x", "direction": "left"}, "direction"),
        ({"label": "near", "triggers": "x", "max_distance": -1}, "max_distance"),
        ({"label": "near", "triggers": "x", "score": 1.5}, "score"),
        ({"label": "near", "trigger": "x"}, "trigger"),
    ],
)
def test_invalid_rule_names_file_and_line(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"label": "near", "triggers": "and"}, rule])
    with pytest.raises(RuleFileError, match=rf"r\.jsonl:2: .*{message}"):
        make(rules_path=str(path))


def test_saved_pipeline_holds_rules_without_the_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rules" / "r.jsonl", [
        {"label": "works_for", "triggers": "hired", "direction": "tail_first", "score": 0.7},
        {"label": "located_in", "pattern": [{"LOWER": "in"}], "whole_gap": True, "score": 0.3},
    ])
    nlp = make(rules_path=str(path))
    ents = (("Apple", "corporation"), ("Tim Cook", "person"), ("Cupertino", "location"))
    before = to_record(doc_with(nlp, "Apple hired Tim Cook in Cupertino", *ents))
    assert len(before.relations) == 2
    nlp.to_disk(tmp_path / "model")
    shutil.rmtree(tmp_path / "rules")
    loaded = spacy.load(tmp_path / "model")
    assert to_record(doc_with(loaded, "Apple hired Tim Cook in Cupertino", *ents)) == before


def test_shipped_semeval_config_with_gold_entities() -> None:
    nlp = distil.load(REPO / "configs/rel_rules.cfg")
    assert nlp.pipe_names == ["rel"]
    schema = component(nlp, "rel").schema
    assert len(schema.labels) == 9 and all(s.head == ("NOMINAL",) and s.tail == ("NOMINAL",) for s in schema.labels)
    cases = [
        ("The fire was caused by lightning .", "fire", "lightning", ("lightning", "Cause-Effect", "fire")),
        ("The apples were in a basket .", "apples", "basket", ("apples", "Content-Container", "basket")),
        ("A flock of birds flew over .", "flock", "birds", ("birds", "Member-Collection", "flock")),
        ("The cake made by the baker was sweet .", "cake", "baker", ("cake", "Product-Producer", "baker")),
        ("He wrote an article about the election .", "article", "election", ("article", "Message-Topic", "election")),
    ]
    for text, first, second, expected in cases:
        doc = doc_with(nlp, text, (first, "NOMINAL"), (second, "NOMINAL"))
        assert [r[:3] for r in rels(doc)] == [expected], text


def test_shipped_all_rules_demo() -> None:
    nlp = distil.load(REPO / "configs/all_rules.cfg")
    assert nlp.pipe_names == ["sentencizer", "ner", "rel", "textcat"]
    doc = nlp("Apple hired Tim Cook in Cupertino. I lost my card yesterday, please block it.")
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Apple", "corporation"), ("Tim Cook", "person"), ("Cupertino", "location")]
    assert {r[:3] for r in rels(doc)} == {("Tim Cook", "works_for", "Apple"), ("Tim Cook", "located_in", "Cupertino")}
    assert component(nlp, "textcat").schema.predicted(doc.cats) == ["lost_or_stolen_card"]
    doc = nlp("Sundar Pichai is the CEO of Google, which is based in Mountain View.")
    assert {r[:3] for r in rels(doc)} == {
        ("Sundar Pichai", "works_for", "Google"), ("Google", "located_in", "Mountain View")}
