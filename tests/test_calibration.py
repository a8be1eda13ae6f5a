"""Expected calibration error: hand-made decisions and Docs whose ECE is known, and evaluate's report of it."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc

from distil.annotations import EntityPrediction, RelationPrediction, write_cats, write_entities, write_relations
from distil.pipeline.cli.evaluate import format_report
from distil.pipeline.evaluate import evaluate
from distil.scoring import category_calibration, entity_calibration, expected_calibration_error, relation_calibration

from .test_evaluate import gold, ner_textcat_pipeline, one_hot


def test_ece_of_handmade_decisions() -> None:
    # Scored 0.9 and right 9 times in 10: perfectly calibrated.
    calibrated = expected_calibration_error([(0.9, True)] * 9 + [(0.9, False)])
    assert calibrated["ece"] == pytest.approx(0.0) and calibrated["n"] == 10
    [only] = calibrated["bins"]
    assert only == pytest.approx({"lower": 0.8, "upper": 0.9, "n": 10, "mean_score": 0.9, "accuracy": 0.9})
    # Always "certain", right half the time: the ECE is the error rate.
    assert expected_calibration_error([(1.0, True), (1.0, False)])["ece"] == pytest.approx(0.5)
    # Two bins, half the decisions each: |0.5 - 0.25| / 2 + |1.0 - 0.95| / 2.
    result = expected_calibration_error([(0.25, True), (0.25, False), (0.95, True), (0.95, True)])
    assert result["ece"] == pytest.approx(0.15)
    assert [(b["lower"], b["upper"], b["n"]) for b in result["bins"]] == [(0.2, 0.3, 2), (0.9, 1.0, 2)]
    # Bins are (k/10, (k+1)/10]: 0.3 belongs to (0.2, 0.3], 0.0 to the first bin.
    assert expected_calibration_error([(0.3, True)])["bins"][0]["upper"] == pytest.approx(0.3)
    assert expected_calibration_error([(0.0, False)])["bins"][0]["lower"] == 0.0
    assert expected_calibration_error([])["ece"] is None


def _doc(text: str, ents: list[tuple[str, str, float | None]]) -> Doc:
    doc = spacy.blank("en")(text)
    predictions = []
    for surface, label, score in ents:
        start = text.index(surface)
        predictions.append(EntityPrediction(start, start + len(surface), label, score))
    return write_entities(doc, predictions)


def test_entity_relation_and_category_calibration_on_handmade_docs() -> None:
    text = "Tim Cook runs Apple in Berlin"
    truth = gold(text, [("Tim Cook", "PERSON"), ("Apple", "ORG")], [(0, 1, "works_for")])
    predicted = _doc(text, [("Tim Cook", "PERSON", 0.8), ("Apple", "GPE", 0.6), ("Berlin", "GPE", None)])
    # Tim Cook right at 0.8 (gap 0.2), Apple wrong at 0.6 (gap 0.6): ECE 0.4; Berlin has no score.
    ents = entity_calibration([(predicted, truth)])
    assert ents["ece"] == pytest.approx(0.4) and (ents["n"], ents["unscored"]) == (2, 1)
    write_relations(predicted, [RelationPrediction(0, 1, "works_for", 0.7), RelationPrediction(1, 0, "sibling", 0.2),
                                RelationPrediction(0, 2, "based_in", None)])
    rels = relation_calibration([(predicted, truth)])
    # works_for between the same spans is right (the gold label is about spans, not entity types): |1 - 0.7| and |0 - 0.2|.
    assert rels["ece"] == pytest.approx((0.3 + 0.2) / 2) and rels["unscored"] == 1
    # A symmetric label counts in either direction.
    sym_truth = gold(text, [("Tim Cook", "PERSON"), ("Apple", "ORG")], [(0, 1, "sibling")])
    assert relation_calibration([(predicted, sym_truth)], symmetric=["sibling"])["accuracy"] == pytest.approx(0.5)
    labels = ["card", "transfer", "other"]
    right = write_cats(spacy.blank("en")("a"), {"card": 0.7, "transfer": 0.2, "other": 0.1})
    wrong = write_cats(spacy.blank("en")("b"), {"card": 0.1, "transfer": 0.9, "other": 0.0})
    pairs = [(right, gold("a", cats=one_hot("card"))), (wrong, gold("b", cats=one_hot("card")))]
    assert category_calibration(pairs, labels)["ece"] == pytest.approx((0.3 + 0.9) / 2)
    # Multi-label: each label's yes/no decision, scored max(p, 1 - p).
    multi = write_cats(spacy.blank("en")("c"), {"card": 0.8, "transfer": 0.4})
    multi_gold = gold("c", cats={"card": 1.0, "transfer": 1.0})
    result = category_calibration([(multi, multi_gold)], ["card", "transfer"], exclusive=False)
    assert result["ece"] == pytest.approx((0.2 + 0.6) / 2)


def test_evaluate_reports_ece_next_to_accuracy_and_says_no_scores() -> None:
    golds = [
        gold("Tim Cook lost his card", [("Tim Cook", "PERSON")], cats=one_hot("card")),
        gold("Apple sent a card transfer", [("Apple", "ORG")], cats=one_hot("transfer")),
    ]
    report = evaluate(ner_textcat_pipeline(), golds, repeats=1, warmup_docs=0, min_run_seconds=0.0)
    # The keyword rules write 1.0 for their category: right on one document of two, so the ECE is 0.5.
    assert report.scores["cats_accuracy"] == 0.5 and report.scores["cats_ece"] == pytest.approx(0.5)
    assert report.scores["cats_calibration"]["n"] == 2
    # spaCy's entity_ruler writes no score: there is nothing to calibrate.
    assert report.scores["ents_ece"] is None and report.scores["ents_calibration"]["unscored"] == 2
    text = format_report(report)
    assert "calibration (ECE, 10 bins)" in text and "50.00" in text
    assert "no scores" in text
    assert "rel_ece" not in report.to_dict()["scores"]
