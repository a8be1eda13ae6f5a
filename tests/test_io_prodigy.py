"""Prodigy-style JSONL both ways: reading tasks, counted skips, and a lossless round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distil.annotations import (
    EntityPrediction,
    Failure,
    RelationPrediction,
    record_failure,
    write_cats,
    write_entities,
    write_relations,
)
from distil.pipeline.io.conversion_report import ConversionError, ConversionReport
from distil.pipeline.io.prodigy import read_prodigy, task_to_doc, to_prodigy, write_prodigy
from distil.records import META_KEY, to_record

FIXTURES = Path(__file__).parent / "fixtures" / "io"


def test_reads_spans_relations_and_choices(nlp):
    path = FIXTURES / "prodigy.jsonl"
    report = ConversionReport()
    docs = list(read_prodigy(path, nlp, report))
    records = [to_record(doc) for doc in docs]
    assert len(records) == 3
    first = records[0]
    assert [(e.text, e.label) for e in first.entities] == [("Alex", "PERSON"), ("Acme", "ORG"), ("Paris", "GPE")]
    # One relation matched by span offsets, one (without spans) by token index.
    assert [(r.head, r.tail, r.label) for r in first.relations] == [(0, 1, "WORKS_FOR"), (1, 2, "LOCATED_IN")]
    assert first.meta == {"id": "a1"}
    assert records[1].cats == {"card_arrival": 1.0, "exchange_rate": 0.0}
    # The task's own tokens are used, and the relation direction is kept (head Carol, tail Bob).
    assert [t.text for t in docs[2]] == ["Bob", "met", "Carol", "."]
    assert [(r.head.text, r.tail.text, r.label) for r in docs[2]._.relations] == [("Carol", "Bob", "MET")]
    assert report.skips == {
        "answer 'reject'": 1,
        "answer 'ignore'": 1,
        "span outside the text": 1,
        "malformed JSON": 1,
        "relation endpoint is not one of the spans": 1,
    }
    assert report.examples["answer 'reject'"] == [f"{path}:3"]
    assert report.examples["relation endpoint is not one of the spans"] == [f"{path}:7 (MET child_span)"]


def test_strict_stops_at_the_first_rejected_task(nlp):
    with pytest.raises(ConversionError, match=r"prodigy\.jsonl:3: answer 'reject'"):
        list(read_prodigy(FIXTURES / "prodigy.jsonl", nlp, ConversionReport(strict=True)))


def annotated_docs(nlp):
    doc = nlp("Marie Curie worked at the University of Paris in 1906.")
    write_entities(
        doc,
        [
            EntityPrediction(0, 11, "PERSON", 0.93),
            EntityPrediction(22, 45, "ORG", None),
            EntityPrediction(49, 53, "DATE", 0.5),
        ],
    )
    write_relations(doc, [RelationPrediction(0, 1, "works_at", 0.8), RelationPrediction(1, 0, "employs", None)])
    write_cats(doc, {"science": 0.7, "sports": 0.1})
    doc.user_data[META_KEY] = {"id": "d1", "source": "unit"}
    record_failure(doc, Failure("rel", "rel", "timeout", "server too slow"))
    gold = nlp("I lost my card yesterday!")
    write_cats(gold, {"lost_or_stolen_card": 1.0, "card_arrival": 0.0})
    plain = nlp("Nothing to see here.")
    return [doc, gold, plain]


def test_round_trip_is_lossless(nlp, tmp_path):
    docs = annotated_docs(nlp)
    path = tmp_path / "review.jsonl"
    assert write_prodigy(docs, path) == 3
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert tasks[0]["spans"][1] == {"start": 22, "end": 45, "token_start": 4, "token_end": 7, "label": "ORG"}
    assert tasks[0]["relations"][0]["head_span"]["label"] == "PERSON"
    assert tasks[1]["accept"] == ["lost_or_stolen_card"] and "answer" not in tasks[1]
    report = ConversionReport()
    back = list(read_prodigy(path, nlp, report))
    assert report.skipped == 0
    assert [to_record(doc) for doc in back] == [to_record(doc) for doc in docs]


def test_a_changed_choice_wins_over_stored_scores(nlp):
    doc = annotated_docs(nlp)[0]
    task = to_prodigy(doc)
    task["accept"] = ["sports"]  # the reviewer corrected the category
    assert task_to_doc(task, nlp).cats == {"science": 0.0, "sports": 1.0}
    task.pop("spans")  # the reviewer removed every span: relations must go too
    task.pop("relations")
    corrected = task_to_doc(task, nlp)
    assert corrected.ents == () and corrected._.relations == []
