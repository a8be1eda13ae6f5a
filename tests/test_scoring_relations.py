"""Relation scoring and the SemEval-2010 Task 8 official measure, against hand-computed numbers."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc

from distil.annotations import EntityPrediction, RelationPrediction, write_entities, write_relations
from distil.scoring import OTHER, directed_label, score_relations, score_semeval

TEXT = "Tim Cook runs Apple in Cupertino ."
TIM, APPLE, CUPERTINO = (0, 8), (14, 19), (23, 32)
NLP = spacy.blank("en")


def make_doc(*relations: tuple[tuple[int, int], tuple[int, int], str], scores: tuple[float, ...] = ()) -> Doc:
    doc = NLP.make_doc(TEXT)
    spans = [TIM, APPLE, CUPERTINO]
    write_entities(doc, [EntityPrediction(s, e, "ENT") for s, e in spans])
    rels = [
        RelationPrediction(spans.index(head), spans.index(tail), label, scores[i] if scores else None)
        for i, (head, tail, label) in enumerate(relations)
    ]
    write_relations(doc, rels)
    return doc


def test_perfect_prediction_scores_one():
    gold = make_doc((TIM, APPLE, "leads"), (APPLE, CUPERTINO, "located_in"))
    pred = make_doc((TIM, APPLE, "leads"), (APPLE, CUPERTINO, "located_in"))
    scores = score_relations([(pred, gold)])
    assert scores["rel_micro_f"] == pytest.approx(1.0)
    assert scores["rel_macro_f"] == pytest.approx(1.0)
    assert scores["rel_per_type"]["leads"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})


def test_partial_prediction_micro_and_macro():
    # leads: gold 2 (over two docs), predicted 1 correct -> P 1, R 1/2, F 2/3.
    # located_in: gold 0, predicted 1 -> P 0, R 0, F 0.
    # micro: tp 1, fp 1, fn 1 -> 1/2, 1/2, 1/2; macro: P 1/2, R 1/4, F 1/3.
    gold1 = make_doc((TIM, APPLE, "leads"))
    pred1 = make_doc((TIM, APPLE, "leads"), (APPLE, CUPERTINO, "located_in"))
    gold2 = make_doc((TIM, APPLE, "leads"))
    pred2 = make_doc()
    scores = score_relations([(pred1, gold1), (pred2, gold2)])
    assert scores["rel_micro_p"] == pytest.approx(0.5)
    assert scores["rel_micro_r"] == pytest.approx(0.5)
    assert scores["rel_micro_f"] == pytest.approx(0.5)
    assert scores["rel_macro_p"] == pytest.approx(0.5)
    assert scores["rel_macro_r"] == pytest.approx(0.25)
    assert scores["rel_macro_f"] == pytest.approx(1 / 3)
    assert scores["rel_per_type"]["leads"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert scores["rel_per_type"]["located_in"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})


def test_wrong_direction_is_wrong_for_a_directed_label():
    gold = make_doc((TIM, APPLE, "leads"))
    pred = make_doc((APPLE, TIM, "leads"))
    scores = score_relations([(pred, gold)])
    assert scores["rel_micro_p"] == 0.0
    assert scores["rel_micro_r"] == 0.0


def test_order_is_ignored_for_a_symmetric_label():
    gold = make_doc((TIM, APPLE, "related"))
    pred = make_doc((APPLE, TIM, "related"))
    assert score_relations([(pred, gold)], symmetric={"related"})["rel_micro_f"] == pytest.approx(1.0)
    assert score_relations([(pred, gold)])["rel_micro_f"] == 0.0


def test_empty_predictions_and_empty_gold():
    gold = make_doc((TIM, APPLE, "leads"), (APPLE, CUPERTINO, "located_in"))
    scores = score_relations([(make_doc(), gold)])
    assert (scores["rel_micro_p"], scores["rel_micro_r"], scores["rel_micro_f"]) == (0.0, 0.0, 0.0)
    nothing = score_relations([(make_doc(), make_doc())])
    assert nothing["rel_micro_f"] is None and nothing["rel_per_type"] is None


def test_relations_match_by_characters_not_tokens():
    # The gold doc is tokenised differently ("Tim Cook" as one token) but has the same char spans.
    gold = Doc(NLP.vocab, words=["Tim Cook", "runs", "Apple", "in", "Cupertino", "."], spaces=[True] * 5 + [False])
    assert gold.text == TEXT
    write_entities(gold, [EntityPrediction(*TIM, "ENT"), EntityPrediction(*APPLE, "ENT")])
    write_relations(gold, [RelationPrediction(0, 1, "leads")])
    pred = make_doc((TIM, APPLE, "leads"))
    assert score_relations([(pred, gold)])["rel_micro_f"] == pytest.approx(1.0)


def test_directed_label_reads_direction_and_best_score():
    assert directed_label(make_doc((TIM, APPLE, "Cause-Effect")), TIM, APPLE) == "Cause-Effect(e1,e2)"
    assert directed_label(make_doc((APPLE, TIM, "Cause-Effect")), TIM, APPLE) == "Cause-Effect(e2,e1)"
    best = make_doc((TIM, APPLE, "Cause-Effect"), (APPLE, TIM, "Message-Topic"), scores=(0.3, 0.9))
    assert directed_label(best, TIM, APPLE) == "Message-Topic(e2,e1)"
    # A relation with a third entity is not an answer for the pair (e1, e2).
    assert directed_label(make_doc((APPLE, CUPERTINO, "Cause-Effect")), TIM, APPLE) == OTHER


def test_semeval_official_measure_on_a_hand_computed_confusion():
    answers = [
        ("Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)"),  # correct
        ("Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)"),  # right type, wrong direction: wrong
        ("Cause-Effect(e2,e1)", "Other"),
        ("Component-Whole(e1,e2)", "Component-Whole(e1,e2)"),  # correct
        ("Component-Whole(e2,e1)", "Cause-Effect(e1,e2)"),
        ("Other", "Component-Whole(e1,e2)"),
        ("Other", "Other"),  # correct, but Other is excluded from the averages
        ("Message-Topic(e1,e2)", "Other"),
    ]
    # Gold per type: C-E 3, C-W 2, M-T 1. Predicted per type (any direction): C-E 3 (1 of them the
    # wrong direction), C-W 2, M-T 0. Correct: C-E 1, C-W 1.
    # C-E: P 1/3, R 1/3, F 1/3. C-W: P 1/2, R 1/2, F 1/2. M-T: P 0 (never predicted), R 0, F 0.
    # Macro over the 3 gold types: P = R = F = (1/3 + 1/2 + 0) / 3 = 5/18.
    # Micro: correct 2, predicted 5, gold 6 -> P 2/5, R 1/3, F 4/11. Accuracy: 3/8.
    scores = score_semeval(answers)
    assert scores["rel_semeval_macro_p"] == pytest.approx(5 / 18)
    assert scores["rel_semeval_macro_r"] == pytest.approx(5 / 18)
    assert scores["rel_semeval_macro_f"] == pytest.approx(5 / 18)
    assert scores["rel_semeval_micro_p"] == pytest.approx(2 / 5)
    assert scores["rel_semeval_micro_r"] == pytest.approx(1 / 3)
    assert scores["rel_semeval_micro_f"] == pytest.approx(4 / 11)
    assert scores["rel_semeval_accuracy"] == pytest.approx(3 / 8)
    assert scores["rel_semeval_per_type"]["Cause-Effect"] == pytest.approx({"p": 1 / 3, "r": 1 / 3, "f": 1 / 3})
    assert scores["rel_semeval_per_type"]["Message-Topic"] == {"p": 0.0, "r": 0.0, "f": 0.0}
    assert scores["rel_semeval_docs"] == 8


def test_semeval_macro_f_is_the_mean_of_per_type_f():
    # C-E: gold 2, predicted 1 correct -> P 1, R 1/2, F 2/3.
    # C-W: gold 1 correct, plus one Other predicted as C-W -> P 1/2, R 1, F 2/3.
    answers = [
        ("Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)"),
        ("Cause-Effect(e1,e2)", "Other"),
        ("Component-Whole(e2,e1)", "Component-Whole(e2,e1)"),
        ("Other", "Component-Whole(e1,e2)"),
    ]
    scores = score_semeval(answers)
    assert scores["rel_semeval_macro_p"] == pytest.approx(0.75)
    assert scores["rel_semeval_macro_r"] == pytest.approx(0.75)
    # Mean of per-type F1 (2/3), not the harmonic mean of macro P and R (0.75).
    assert scores["rel_semeval_macro_f"] == pytest.approx(2 / 3)
