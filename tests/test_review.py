"""Review round trips (Prodigy JSONL and Label Studio JSON): lossless, corrections merged, agreement."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from spacy.language import Language

from distil.corpus import read_docs
from distil.pipeline.annotate import text_key
from distil.pipeline.review import confidence, export_review, import_review, load_records
from distil.records import DocRecord, dumps

from .conftest import distil_cli

RECORDS: list[dict[str, Any]] = [
    {
        "text": "Tim Cook runs Apple in Cupertino.",
        "entities": [
            {"start": 0, "end": 8, "label": "person", "text": "Tim Cook", "score": 0.9},
            {"start": 14, "end": 19, "label": "corporation", "text": "Apple", "score": 0.4},
            {"start": 23, "end": 32, "label": "location", "text": "Cupertino", "score": 0.8},
        ],
        "relations": [{"head": 0, "tail": 1, "label": "works_for", "score": 0.7}],
        "cats": {"tech": 0.7, "bank": 0.3},
        "meta": {"id": "a"},
    },
    {
        "text": "Block my card please.",
        "entities": [],
        "relations": [],
        "cats": {"tech": 0.1, "bank": 0.9},
        "meta": {"id": "b"},
    },
    {
        "text": "Sundar Pichai joined Google.",
        "entities": [
            {"start": 0, "end": 13, "label": "person", "text": "Sundar Pichai", "score": 0.95},
            {"start": 21, "end": 27, "label": "location", "text": "Google", "score": 0.6},
        ],
        "relations": [],
        "cats": {"tech": 0.55, "bank": 0.45},
        "meta": {"id": "c", "failures": [{"component": "rel", "task": "rel", "kind": "invalid_json",
                                          "reason": "x", "raw": "{"}]},
    },
]


@pytest.fixture(name="annotations")
def annotations_dir(tmp_path: Path, nlp: Language) -> Path:
    out = tmp_path / "annotations"
    out.mkdir(parents=True)
    records = [DocRecord.model_validate({**r, "meta": {**r["meta"], "key": text_key(r["text"])}}) for r in RECORDS]
    (out / "records.jsonl").write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")
    return out


def test_confidence_orders_least_sure_first(annotations: Path) -> None:
    records = load_records(annotations)
    assert [confidence(r) for r in records] == [0.4, 0.9, 0.0]


@pytest.mark.parametrize("fmt,suffix", [("prodigy", ".jsonl"), ("labelstudio", ".json")])
def test_untouched_round_trip_is_lossless(annotations: Path, nlp: Language, tmp_path: Path, fmt: str, suffix: str) -> None:
    before = load_records(annotations)
    tasks = tmp_path / f"tasks{suffix}"
    assert export_review(annotations, tasks, nlp, fmt=fmt, order="uncertainty") == 3  # type: ignore[arg-type]
    if fmt == "labelstudio":
        # Label Studio's export: every task annotated by accepting the prediction as is.
        data = json.loads(tasks.read_text())
        assert [t["data"]["key"] for t in data] == [key for key in (before[2].meta["key"], before[0].meta["key"],
                                                                    before[1].meta["key"])]
        for task in data:
            task["annotations"] = [{"id": 1, "result": task["predictions"][0]["result"], "was_cancelled": False}]
        tasks.write_text(json.dumps(data))
        assert "<Relation value=\"works_for\"/>" in tasks.with_suffix(".xml").read_text()
    if fmt == "prodigy":
        # Exported tasks carry no answer: imported unchanged, nothing counts as reviewed.
        untouched = import_review(tasks, annotations, nlp)
        assert (untouched.reviewed, untouched.unanswered) == (0, 3)
        assert all("reviewed" not in r.meta for r in load_records(annotations))
        tasks.write_text("".join(json.dumps({**json.loads(line), "answer": "accept"}) + "\n"
                                 for line in tasks.read_text().splitlines()))
    report = import_review(tasks, annotations, nlp)
    assert report.reviewed == 3 and report.changed == 0 and report.rejected == 0
    after = load_records(annotations)
    for old, new in zip(before, after, strict=True):
        assert (new.text, new.entities, new.relations, new.cats) == (old.text, old.entities, old.relations, old.cats)
        assert new.meta["reviewed"] is True and new.meta["id"] == old.meta["id"]
    assert report.agreement["entities"]["f"] == 1.0 and report.agreement["categories"]["accuracy"] == 1.0


def test_prodigy_corrections_reject_and_agreement(annotations: Path, nlp: Language, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    export_review(annotations, tasks, nlp, fmt="prodigy", order="input")
    lines = [{**json.loads(line), "answer": "accept"} for line in tasks.read_text().splitlines()]
    # Doc a: the reviewer drops "Cupertino" and fixes the category; doc b rejected; doc c: Google is a corporation.
    lines[0]["spans"] = lines[0]["spans"][:2]
    lines[0]["accept"] = ["bank"]
    lines[1]["answer"] = "reject"
    lines[2]["spans"][1]["label"] = "corporation"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in lines))
    report = import_review(tasks, annotations, nlp)
    assert (report.reviewed, report.changed, report.rejected) == (2, 2, 1)
    after = load_records(annotations)
    assert [r.meta["id"] for r in after] == ["a", "c"]
    assert [e.text for e in after[0].entities] == ["Tim Cook", "Apple"] and after[0].cats == {"tech": 0.0, "bank": 1.0}
    assert after[0].relations[0].label == "works_for"
    assert after[1].entities[1].label == "corporation" and "failures" not in after[1].meta
    ents = report.agreement["entities"]
    # Model: 5 entities, reviewer: 4; 3 agree -> P 3/5, R 3/4.
    assert ents["f"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert ents["per_label"]["person"] == 1.0 and ents["per_label"]["location"] == 0.0
    assert report.agreement["categories"]["accuracy"] == 0.5
    read_back = [d.text for d in read_docs(annotations, nlp)]
    assert read_back == [r.text for r in after], "the directory reads back as the merged records, once each"
    assert (annotations / "records.jsonl").read_text().count("\n") == len(after)


def test_labelstudio_relation_edit_and_cancelled_task(annotations: Path, nlp: Language, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.json"
    export_review(annotations, tasks, nlp, fmt="labelstudio", order="input", limit=2)
    data = json.loads(tasks.read_text())
    result = [dict(r) for r in data[0]["predictions"][0]["result"]]
    for item in result:
        if item["type"] == "relation":
            item["labels"] = ["located_in"]
            item["from_id"], item["to_id"] = "e1", "e2"
    data[0]["annotations"] = [{"id": 1, "result": result, "was_cancelled": False}]
    data[1]["annotations"] = [{"id": 2, "result": [], "was_cancelled": True}]
    tasks.write_text(json.dumps(data))
    report = import_review(tasks, annotations, nlp)
    assert (report.reviewed, report.ignored) == (1, 1)
    first = load_records(annotations)[0]
    assert [(r.head, r.tail, r.label) for r in first.relations] == [(1, 2, "located_in")]
    assert load_records(annotations)[1].meta.get("reviewed") is None


SCHEMA_CONFIG = """
[nlp]
lang = "en"
pipeline = []

[schemas]

[schemas.ner]
@misc = "distil.NERSchema.v1"
labels = ["person", "corporation", "location", "product"]

[schemas.rel]
@misc = "distil.RELSchema.v1"
labels = ["works_for", "located_in", "created"]

[schemas.textcat]
@misc = "distil.TextCatSchema.v1"
labels = ["tech", "bank"]
"""


def test_cli_round_trip(annotations: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "t.jsonl"
    config = tmp_path / "schema.cfg"
    config.write_text(SCHEMA_CONFIG, encoding="utf-8")
    result = subprocess.run(
        [*distil_cli(), "review", "export", str(annotations), "--config", str(config), "--format", "prodigy",
         "--output", str(tasks), "--limit", "2"],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"--label person,corporation,location,product" in result.stderr
    first = json.loads(tasks.read_text().splitlines()[0])
    assert first["meta"]["id"] == "c" and len(tasks.read_text().splitlines()) == 2 and "answer" not in first
    tasks.write_text("".join(json.dumps({**json.loads(line), "answer": "accept"}) + "\n"
                             for line in tasks.read_text().splitlines()))
    result = subprocess.run(
        [*distil_cli(), "review", "import", str(tasks), "--into", str(annotations), "--config", str(config)],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"2 reviewed (0 changed)" in result.stderr
    assert json.loads(result.stdout)["agreement"]["entities"]["f"] == 1.0
    missing = subprocess.run([*distil_cli(), "review", "import", str(tmp_path / "nope.jsonl"), "--into",
                              str(annotations), "--config", str(config)], capture_output=True, timeout=120)
    assert missing.returncode == 1 and b"review file not found" in missing.stderr



def test_agreement_reports_only_labels_that_occur(nlp: Language) -> None:
    from distil.annotations import write_cats
    from distil.pipeline.review import agreement

    pairs = []
    for model_top, reviewer_top in (("tech", "tech"), ("tech", "bank")):
        model, reviewer = nlp("a"), nlp("a")
        # A 4-label exclusive schema: "sports" and "travel" are chosen by no one.
        write_cats(model, {label: 0.7 if label == model_top else 0.1 for label in ("tech", "bank", "sports", "travel")})
        write_cats(reviewer, {label: float(label == reviewer_top) for label in ("tech", "bank", "sports", "travel")})
        pairs.append((model, reviewer))
    cats = agreement(pairs)["categories"]
    assert set(cats["per_label"]) == {"tech", "bank"} and cats["accuracy"] == 0.5
