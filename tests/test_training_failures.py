"""Failures never become labels: documents the teacher failed on are left out of training and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spacy.language import Language

from distil.corpus import has_teacher_failure, read_training_docs, read_training_set
from distil.records import DocRecord, dumps, from_record

from .encoder_support import corpus, textcat_records, tiny_base, tiny_settings


def _failure(task: str) -> dict[str, Any]:
    return {"component": task, "task": task, "kind": "invalid_json", "reason": "not JSON", "raw": "{oops"}


def _write(records: list[dict[str, Any]], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(dumps(DocRecord.model_validate(r)) + "\n" for r in records)
    (directory / "records.jsonl").write_text(lines, encoding="utf-8")
    return directory


def test_failed_records_are_left_out_per_task_and_counted(tmp_path: Path, nlp: Language) -> None:
    rows = [
        {"text": "ok one", "cats": {"a": 1.0, "b": 0.0}},
        {"text": "textcat failed", "cats": {"a": 0.0, "b": 0.0}, "meta": {"failures": [_failure("textcat")]}},
        {"text": "ner failed", "meta": {"failures": [_failure("ner")]}},
        {"text": "pipeline failed", "meta": {"failures": [_failure("any")]}},
        {"text": "reviewed", "cats": {"a": 0.0, "b": 1.0}, "meta": {"reviewed": True}},
    ]
    out = _write(rows, tmp_path / "ann")
    textcat = read_training_set(out, nlp, task="textcat")
    assert [d.text for d in textcat.docs] == ["ok one", "ner failed", "reviewed"]
    assert (textcat.failed, textcat.reviewed) == (2, 1)
    # Relations are predicted between the entities: a failed NER answer spoils them too.
    rel = read_training_set(out, nlp, task="rel", reviewed_weight=2)
    assert [d.text for d in rel.docs] == ["ok one", "textcat failed", "reviewed", "reviewed"] and rel.failed == 2
    # Without a task, any failure leaves the document out (the old entry point does the same).
    assert [d.text for d in read_training_docs(out, nlp)] == ["ok one", "reviewed"]
    doc = from_record({"text": "x", "meta": {"reviewed": True, "failures": [_failure("ner")]}}, nlp)
    assert not has_teacher_failure(doc, "ner"), "a reviewed document's labels are a person's, never spoiled"


def test_human_labelled_documents_join_as_reviewed(tmp_path: Path, nlp: Language) -> None:
    out = _write([{"text": "teacher one", "cats": {"a": 1.0, "b": 0.0}},
                  {"text": "corrected", "cats": {"a": 0.0, "b": 1.0}, "meta": {"reviewed": True}}], tmp_path / "ann")
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"text": "pool doc", "cats": {"a": 0.0, "b": 1.0}}\n', encoding="utf-8")
    both = read_training_set(out, nlp, task="textcat", reviewed_weight=2, human=[pool])
    assert [d.text for d in both.docs] == ["teacher one", "corrected", "pool doc", "corrected", "pool doc"]
    assert both.reviewed == 2
    # human labels alone: the baseline a distilled student must beat
    alone = read_training_set(out, nlp, task="textcat", reviewed_only=True, human=[pool])
    assert [d.text for d in alone.docs] == ["corrected", "pool doc"]


@pytest.mark.slow
def test_train_leaves_failed_documents_out_and_reports_them(tmp_path: Path, nlp: Language) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from distil.training.loop import train

    _, dev_path = corpus("textcat", tmp_path / "data", n_train=4, n_dev=6)
    rows: list[dict[str, Any]] = textcat_records(12, 5)
    # An annotation directory holds one record per distinct text (the last wins): keep the 12 texts distinct.
    for number, row in enumerate(rows):
        row["text"] = f"{row['text']} (ticket {number})"
    # The teacher failed on three documents: they read as "no category", which would be a wrong label.
    for row in rows[:3]:
        row["cats"] = dict.fromkeys(row["cats"], 0.0)
        row["meta"] = {"failures": [_failure("textcat")]}
    train_path = _write(rows, tmp_path / "teacher")
    messages: list[str] = []
    result = train("textcat", train_path, dev_path, tmp_path / "model", base_model=str(tiny_base()),
                   settings=tiny_settings(epochs=1), progress=False, log=messages.append)
    assert result.excluded_failed_docs == 3
    assert messages[0].startswith("textcat: 9 train docs"), messages[0]
    assert any("3 document(s) left out of training: the teacher failed" in m for m in messages), messages
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["dev"]["excluded_failed_docs"] == 3
