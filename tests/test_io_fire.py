"""FIRE reader: token offsets, relations by entity index, what a Doc cannot hold counted, and the real test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from distil.corpus import read_docs
from distil.pipeline.io.conversion_report import ConversionError, ConversionReport
from distil.pipeline.io.convert import ConvertOptions, convert, detect_format
from distil.pipeline.io.fire import ENTITY_TYPES, RELATION_TYPES, looks_like_fire, read_fire
from distil.records import META_KEY, to_record

FIXTURES = Path(__file__).parent / "fixtures" / "io"
FIRE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fire"


def test_entities_relations_and_ids(nlp):
    report = ConversionReport()
    docs = list(read_fire(FIXTURES / "fire.json", nlp, report))
    records = [to_record(doc) for doc in docs]
    assert [r.meta for r in records] == [{"id": "1"}, {"id": "2"}, {"id": "3"}, {"id": "6"}]
    first = records[0]
    assert first.text == "Shares of Tesla dropped 14% over the last quarter"
    assert [(e.text, e.label) for e in first.entities] == [
        ("Shares", "FinancialEntity"), ("Tesla", "Company"), ("14%", "Quantity"), ("last quarter", "Date")
    ]
    assert [(x.head, x.tail, x.label) for x in first.relations] == [
        (0, 1, "Propertyof"), (0, 2, "ValueChangeDecreaseby"), (2, 3, "Valuein")
    ]
    # Directed: the head is the FIRE head.
    assert docs[0]._.relations[1].head.text == "Shares" and docs[0]._.relations[1].tail.text == "14%"


def test_empty_tokens_are_dropped_and_offsets_follow(nlp):
    report = ConversionReport()
    doc = list(read_fire(FIXTURES / "fire.json", nlp, report))[1]
    assert doc.text == "Revenue was $ 5 million as of June 30 , 2016 ."
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Revenue", "FinancialEntity"), ("$ 5 million", "Money"), ("June 30 , 2016", "Date")
    ]
    assert [(r.head.text, r.tail.text, r.label) for r in doc._.relations] == [
        ("Revenue", "$ 5 million", "Value"), ("$ 5 million", "June 30 , 2016", "Valuein")
    ]
    assert report.repairs["empty or whitespace token dropped"] == 2
    assert report.repairs["duplicate relation kept once"] == 1


def test_what_a_doc_cannot_hold_is_counted(nlp):
    path = FIXTURES / "fire.json"
    report = ConversionReport()
    docs = list(read_fire(path, nlp, report))
    nested = docs[2]
    # Of the two nested entities the longer is kept, and the relation to the other one is skipped.
    assert [(e.text, e.label_) for e in nested.ents] == [("Acme", "Company"), ("Globex Corp shares", "FinancialEntity")]
    assert [(r.head.text, r.tail.text, r.label) for r in nested._.relations] == [("Acme", "Globex Corp shares", "ActionBuy")]
    assert report.skips == {
        "overlapping (nested) entity": 1,
        "relation to a skipped entity": 1,
        "relation from an entity to itself": 1,
        "relation index outside the entities": 1,
        "no tokens": 1,
        "not a JSON object": 1,
        "entity span outside the tokens": 1,
    }
    assert report.examples["relation from an entity to itself"] == [f"{path}:3 (orig_id 3, ActionSell(0, 0))"]
    assert report.examples["not a JSON object"] == [f"{path}:5"]
    # The instance with a bad entity is still converted, without it.
    assert [doc.text for doc in docs][-1] == "No relations here ." and list(docs[-1].ents) == []
    with pytest.raises(ConversionError, match=r"fire\.json:2: empty or whitespace token dropped"):
        list(read_fire(path, nlp, ConversionReport(strict=True)))


def test_jsonl_is_read_too_and_formats_are_detected(nlp, tmp_path):
    items = json.loads((FIXTURES / "fire.json").read_text(encoding="utf-8"))
    lines = tmp_path / "fire.jsonl"
    lines.write_text("".join(json.dumps(item) + "\n" for item in items[:3]), encoding="utf-8")
    docs = list(read_fire(lines, nlp, ConversionReport()))
    assert [doc.user_data[META_KEY]["id"] for doc in docs] == ["1", "2", "3"]
    assert detect_format(FIXTURES / "fire.json") == "fire"
    assert detect_format(lines) == "fire"
    # Records and Prodigy tasks have a text: not FIRE.
    assert not looks_like_fire('{"text": "a", "tokens": ["a"], "entities": []}')
    assert not looks_like_fire('[{"text": "a", "entities": []}]')
    broken = tmp_path / "broken.json"
    broken.write_text('[{"tokens": ["a"], "entities": []}', encoding="utf-8")
    with pytest.raises(ConversionError, match="not valid JSON"):
        convert(broken, tmp_path / "out.spacy", fmt="fire")


def test_convert_writes_docbin_with_relations(tmp_path):
    out = tmp_path / "fire.jsonl"
    report = convert(FIXTURES / "fire.json", out, options=ConvertOptions())
    assert report.docs == 4
    assert report.relations == {"Propertyof": 1, "ValueChangeDecreaseby": 1, "Valuein": 2, "Value": 1, "ActionBuy": 1}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["head"], r["tail"], r["label"]) for r in rows[0]["relations"]] == [
        (0, 1, "Propertyof"), (0, 2, "ValueChangeDecreaseby"), (2, 3, "Valuein")
    ]


def test_shipped_schema_declares_the_fire_types(repo):
    from distil.pipeline.cli.train import schema_from_config

    for config in ("configs/fire_encoder.cfg", "configs/fire_rel_encoder.cfg"):
        rel = schema_from_config(repo / config, "rel")
        assert sorted(rel.label_names) == sorted(RELATION_TYPES)
        assert set(rel.entity_labels) <= set(ENTITY_TYPES)
    ner = schema_from_config(repo / "configs/fire_encoder.cfg", "ner")
    assert sorted(ner.label_names) == sorted(ENTITY_TYPES)


@pytest.mark.skipif(not (FIRE_DATA / "fire_test.json").exists(), reason="shared FIRE data not present")
def test_real_test_split_reports_the_documented_counts(tmp_path, repo):
    from distil.pipeline.cli.train import schema_from_config

    report = convert(FIRE_DATA / "fire_test.json", tmp_path / "test.spacy")
    # docs/convert.md, "The shared test sets": SOURCE.md's counts, 6 empty tokens dropped, nothing skipped.
    assert report.docs == 412
    assert sum(report.entities.values()) == 2264
    assert sum(report.relations.values()) == 1266
    assert report.skips == {}
    assert report.repairs == {"empty or whitespace token dropped": 6}
    assert report.relations["Propertyof"] == 253 and report.entities["Company"] == 494
    # The shipped schema's head/tail types allow all but one of the test relations.
    rel = schema_from_config(repo / "configs/fire_rel_encoder.cfg", "rel")
    docs = list(read_docs(tmp_path / "test.spacy", spacy.blank("en")))
    outside = [r for doc in docs for r in doc._.relations if r.label not in rel.allowed_labels(r.head.label_, r.tail.label_)]
    assert len(outside) == 1
