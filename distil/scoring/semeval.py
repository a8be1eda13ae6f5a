"""The official SemEval-2010 Task 8 measure, as ``semeval2010_task8_scorer-v1.2.pl`` computes it.

Each SemEval sentence has two marked nominals e1 and e2 and exactly one answer:
one of 9 relation types with a direction, e.g. ``Cause-Effect(e2,e1)``, or
``Other``. The official score is "(9+1)-way classification with directionality
taken into account", macro-averaged F1 excluding Other:

- a prediction of the right type with the wrong direction is wrong;
- per type T, P = correct(T) / predictions of type T in any direction and
  R = correct(T) / gold answers of type T in any direction;
- macro P, R and F1 are the means of the per-type P, R and F1 over the types
  present in the gold answers, Other excluded (F1 is the mean of per-type F1,
  not the harmonic mean of macro P and R);
- micro P/R/F1 pool the counts over the same types.

This module reproduces those counts (including the scorer's quirk that a type
with no prediction at all gets P = 0) on label strings, and reads the answer
for one Doc from its relations between the two nominals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from spacy.tokens import Doc

OTHER = "Other"

CharSpan = tuple[int, int]


def relation_type(label: str) -> str:
    """The undirected type of a directed answer: ``Cause-Effect(e1,e2)`` -> ``Cause-Effect``."""
    return label.split("(", 1)[0]


def directed_label(doc: Doc, e1: CharSpan, e2: CharSpan) -> str:
    """The SemEval answer a Doc gives for the nominals at char spans ``e1`` and ``e2``.

    Among the Doc's relations between these two entities the highest-scoring
    one is the answer (a relation without a score counts as certain); its
    direction is ``(e1,e2)`` when e1 is the head. No relation means ``Other``.
    """
    best: tuple[float, str] | None = None
    for rel in doc._.relations:
        head = (rel.head.start_char, rel.head.end_char)
        tail = (rel.tail.start_char, rel.tail.end_char)
        if (head, tail) == (e1, e2):
            answer = f"{rel.label}(e1,e2)"
        elif (head, tail) == (e2, e1):
            answer = f"{rel.label}(e2,e1)"
        else:
            continue
        score = 1.0 if rel.score is None else float(rel.score)
        if best is None or score > best[0]:
            best = (score, answer)
    return OTHER if best is None else best[1]


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_semeval(answers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Score ``(gold, predicted)`` directed answers (``"Type(e1,e2)"``, ``"Type(e2,e1)"`` or ``"Other"``).

    Returns ``rel_semeval_macro_p/r/f`` (the official score is
    ``rel_semeval_macro_f``), ``rel_semeval_micro_p/r/f``,
    ``rel_semeval_accuracy`` (exact directed answer, Other included),
    ``rel_semeval_per_type`` and ``rel_semeval_docs``; fractions in [0, 1]
    where the Perl scorer prints percentages.
    """
    gold_count: Counter[str] = Counter()
    proposed: Counter[str] = Counter()
    wrong_dir: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    total = 0
    for gold, pred in answers:
        total += 1
        gold_type, pred_type = relation_type(gold), relation_type(pred)
        gold_count[gold_type] += 1
        if pred == gold:
            correct[gold_type] += 1
            proposed[pred_type] += 1
        elif pred_type == gold_type:
            wrong_dir[gold_type] += 1
        else:
            proposed[pred_type] += 1
    per_type: dict[str, dict[str, float]] = {}
    for label in sorted(gold_count):
        # As in the Perl scorer: P is 0 when the type was never proposed in the right direction.
        p = 0.0 if not proposed[label] else correct[label] / (proposed[label] + wrong_dir[label])
        r = _ratio(correct[label], gold_count[label])
        per_type[label] = {"p": p, "r": r, "f": _f1(p, r)}
    types = [label for label in per_type if label != OTHER]
    n = len(types)
    micro_correct = sum(correct[t] for t in types)
    micro_p = _ratio(micro_correct, sum(proposed[t] + wrong_dir[t] for t in types))
    micro_r = _ratio(micro_correct, sum(gold_count[t] for t in types))
    return {
        "rel_semeval_macro_p": sum(per_type[t]["p"] for t in types) / n if n else None,
        "rel_semeval_macro_r": sum(per_type[t]["r"] for t in types) / n if n else None,
        "rel_semeval_macro_f": sum(per_type[t]["f"] for t in types) / n if n else None,
        "rel_semeval_micro_p": micro_p if n else None,
        "rel_semeval_micro_r": micro_r if n else None,
        "rel_semeval_micro_f": _f1(micro_p, micro_r) if n else None,
        "rel_semeval_accuracy": _ratio(sum(correct.values()), total) if total else None,
        "rel_semeval_per_type": per_type,
        "rel_semeval_docs": total,
    }


def semeval_answers(pairs: Iterable[tuple[Doc, Doc]]) -> tuple[list[tuple[str, str]], int]:
    """``(gold, predicted)`` answers of the ``(predicted, gold)`` Doc pairs whose gold Doc has two entities.

    The two gold entities in text order are e1 and e2; a pair with another
    number of gold entities is skipped and counted (the second value).
    """
    answers: list[tuple[str, str]] = []
    skipped = 0
    for predicted, gold in pairs:
        ents = sorted(gold.ents, key=lambda e: e.start_char)
        if len(ents) != 2:
            skipped += 1
            continue
        e1 = (ents[0].start_char, ents[0].end_char)
        e2 = (ents[1].start_char, ents[1].end_char)
        answers.append((directed_label(gold, e1, e2), directed_label(predicted, e1, e2)))
    return answers, skipped
