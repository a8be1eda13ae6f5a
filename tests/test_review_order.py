"""Review that targets doubt: document confidence, the uncertainty/disagreement/random orders, seeded ties, sample order."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language

import distil
from distil.confidence import document_confidence, task_confidences
from distil.pipeline.annotate import text_key
from distil.pipeline.review import (
    ReviewError,
    export_review,
    load_records,
    review_order,
    second_opinion_disagreements,
    simulate_review,
)
from distil.records import DocRecord, dumps

from .conftest import distil_cli
from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

INTENTS = ["card_lost", "top_up", "exchange_rate"]


def _records(rows: list[dict[str, Any]]) -> list[DocRecord]:
    return [DocRecord.model_validate({**r, "meta": {**r.get("meta", {}), "key": text_key(r["text"])}}) for r in rows]


def _directory(records: list[DocRecord], path: Path, nlp: Language) -> Path:
    path.mkdir(parents=True)
    (path / "records.jsonl").write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def sorted_by_label() -> list[DocRecord]:
    """A corpus grouped by intent, as BANKING77's train.csv is, with rules-style categories (all 1.0: all tie)."""
    rows = [
        {"text": f"{label} question {i}", "cats": {name: float(name == label) for name in INTENTS}}
        for label in INTENTS for i in range(6)
    ]
    return _records(rows)


def test_document_confidence_per_task() -> None:
    [scored, empty, unscored, failed, multi] = _records([
        {"text": "Tim Cook runs Apple.",
         "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook", "score": 0.9},
                      {"start": 14, "end": 19, "label": "corporation", "text": "Apple", "score": 0.5}],
         "relations": [{"head": 0, "tail": 1, "label": "works_for", "score": 0.7}],
         "cats": {"tech": 0.8, "bank": 0.2}},
        {"text": "nothing here", "meta": {"empty_scores": {"ner": 0.3, "rel": 1.0}}},
        {"text": "Tim Cook", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook"}]},
        {"text": "boom", "cats": {"tech": 1.0, "bank": 0.0},
         "meta": {"failures": [{"component": "c", "task": "textcat", "kind": "timeout", "reason": "", "raw": None}]}},
        {"text": "both", "cats": {"tech": 0.9, "bank": 0.6}},
    ])
    assert task_confidences(scored) == {"ner": 0.5, "rel": 0.7, "textcat": 0.8}
    assert document_confidence(scored) == 0.5
    # No entity: the probability of the empty answer is the NER confidence.
    assert task_confidences(empty) == {"ner": 0.3, "rel": 1.0} and document_confidence(empty) == 0.3
    assert document_confidence(unscored) is None, "no score is no confidence, never certainty"
    assert document_confidence(failed) == 0.0
    assert document_confidence(multi) == pytest.approx(0.6), "multi-label: the least decided label"


def test_random_and_uncertainty_orders_differ_from_file_order_and_ties_follow_the_seed() -> None:
    records = sorted_by_label()
    file_order = list(range(len(records)))
    by_uncertainty = review_order(records, "uncertainty", seed=0)
    by_random = review_order(records, "random", seed=0)
    assert by_uncertainty != file_order and by_random != file_order
    assert sorted(by_uncertainty) == file_order and sorted(by_random) == file_order
    # Every confidence ties (rules write 1.0): the seeded shuffle alone decides, the same way every time.
    assert by_uncertainty == review_order(records, "uncertainty", seed=0) == by_random
    assert review_order(records, "uncertainty", seed=1) != by_uncertainty
    # The first third of the review is not the first intent of the file.
    first = {records[i].text.split()[0] for i in by_uncertainty[:6]}
    assert len(first) > 1
    assert review_order(records, "input") == file_order


def test_uncertainty_puts_the_least_confident_first_and_breaks_ties_by_seed() -> None:
    rows = [{"text": f"doc {i}", "cats": {"a": p, "b": 1 - p}} for i, p in enumerate([0.9, 0.6, 0.9, 0.6, 0.9, 0.95])]
    rows.append({"text": "failed", "cats": {"a": 1.0, "b": 0.0},
                 "meta": {"failures": [{"component": "c", "task": "textcat", "kind": "timeout", "reason": "", "raw": None}]}})
    records = _records(rows)
    for seed in range(4):
        order = review_order(records, "uncertainty", seed=seed)
        assert order[0] == 6, "a failed document first"
        assert set(order[1:3]) == {1, 3} and set(order[3:6]) == {0, 2, 4} and order[6] == 5
    orders = {tuple(review_order(records, "uncertainty", seed=seed)) for seed in range(12)}
    assert len(orders) > 1, "ties are broken by the seed, not by file order"


@pytest.fixture(name="rules_ner")
def rules_ner_config(tmp_path: Path) -> Path:
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text(json.dumps({"label": "corporation", "pattern": "Google"}) + "\n", encoding="utf-8")
    config = tmp_path / "second.cfg"
    config.write_text(
        '[nlp]\nlang = "en"\npipeline = ["ner"]\n\n[schemas]\n\n[schemas.ner]\n@misc = "distil.NERSchema.v1"\n'
        'labels = ["person", "corporation"]\n\n[components]\n\n[components.ner]\nfactory = "distil_ner_rules"\n'
        f'schema = ${{schemas.ner}}\npatterns_path = "{patterns}"\nscore = 1.0\n',
        encoding="utf-8",
    )
    return config


def teacher_records() -> list[DocRecord]:
    """Four documents the teacher is equally sure of; on the third it missed Google, which the rules find."""
    return _records([
        {"text": "Tim Cook spoke today.", "entities": [{"start": 0, "end": 8, "label": "person", "text": "Tim Cook", "score": 0.9}]},
        {"text": "Rain all day.", "meta": {"empty_scores": {"ner": 0.9}}},
        {"text": "Ann joined Google.", "entities": [{"start": 0, "end": 3, "label": "person", "text": "Ann", "score": 0.9}]},
        {"text": "Google opened an office.",
         "entities": [{"start": 0, "end": 6, "label": "corporation", "text": "Google", "score": 0.9}]},
    ])


def test_disagreement_ranks_the_document_the_second_opinion_disputes_first(rules_ner: Path, nlp: Language) -> None:
    records = teacher_records()
    second = distil.load(rules_ner)
    disagreements = second_opinion_disagreements(records, second, nlp)
    # Doc 2: the teacher says {Ann/person}, the rules {Google/corporation}: nothing shared. Doc 0: the rules
    # find nothing, the teacher one entity. Docs 1 and 3 agree (both empty; both Google).
    assert disagreements == [1.0, 0.0, 1.0, 0.0]
    for seed in range(3):
        order = review_order(records, "disagreement", seed=seed, disagreements=disagreements)
        assert set(order[:2]) == {0, 2} and set(order[2:]) == {1, 3}
    with pytest.raises(ReviewError, match="needs a second opinion"):
        review_order(records, "disagreement")


def test_export_and_simulate_follow_the_order(rules_ner: Path, nlp: Language, tmp_path: Path) -> None:
    annotations = _directory(teacher_records(), tmp_path / "ann", nlp)
    tasks = tmp_path / "tasks.jsonl"
    export_review(annotations, tasks, nlp, order="disagreement", seed=0, second_opinion=distil.load(rules_ner), limit=2)
    exported = [json.loads(line) for line in tasks.read_text(encoding="utf-8").splitlines()]
    assert {t["text"] for t in exported} == {"Tim Cook spoke today.", "Ann joined Google."}
    assert all(t["meta"]["disagreement"] == 1.0 for t in exported)
    gold = [distil.from_record(r, nlp) for r in teacher_records()]
    summary = simulate_review(annotations, gold, 0.5, tmp_path / "sim", nlp, order="random", seed=3)
    assert (summary["order"], summary["seed"], summary["replaced_by_gold"]) == ("random", 3, 2)
    reviewed = [r.text for r in load_records(tmp_path / "sim") if r.meta.get("reviewed")]
    expected = [teacher_records()[i].text for i in review_order(teacher_records(), "random", seed=3)[:2]]
    assert sorted(reviewed) == sorted(expected)


def test_cli_review_export_disagreement_needs_a_second_opinion(rules_ner: Path, nlp: Language, tmp_path: Path) -> None:
    annotations = _directory(teacher_records(), tmp_path / "ann", nlp)
    out = tmp_path / "tasks.jsonl"
    base = [*distil_cli(), "review", "export", str(annotations), "--config", str(rules_ner), "--output", str(out)]
    missing = subprocess.run([*base, "--order", "disagreement"], capture_output=True, text=True)
    assert missing.returncode != 0 and "--second-opinion" in missing.stderr
    unknown = subprocess.run([*base, "--order", "confidence"], capture_output=True, text=True)
    assert unknown.returncode != 0 and "'confidence'" in unknown.stderr
    done = subprocess.run([*base, "--order", "disagreement", "--second-opinion", str(rules_ner), "--limit", "1", "--seed", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["meta"]["disagreement"] == 1.0


# --- the LLM writes the empty answer's probability --------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


def test_llm_empty_answer_probability_is_the_confidence_of_a_document_without_entities(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    nlp = load_config_text(llm_config("ner", openai_block(server.base_url, "logprobs = true\n")), tmp_path / "ner.cfg")
    empty = nlp("nothing to see here today.")
    assert not empty.ents
    record = distil.to_record(empty)
    probability = record.meta["empty_scores"]["ner"]
    assert 0.0 < probability <= 1.0 and document_confidence(empty) == pytest.approx(probability)
    assert distil.to_record(distil.from_record(record, spacy.blank("en"))).meta["empty_scores"] == {"ner": probability}
    named = nlp("Yesterday Alice Smith met Bob in Paris.")
    assert "empty_scores" not in distil.to_record(named).meta
    assert document_confidence(named) == pytest.approx(min(ent._.score for ent in named.ents))
    plain = load_config_text(llm_config("ner", openai_block(server.base_url)), tmp_path / "plain.cfg")
    assert document_confidence(plain("nothing to see here today.")) is None, "no log-probs: no confidence"
