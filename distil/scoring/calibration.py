"""Calibration: whether a prediction's score can be read as the chance that it is right.

The figure is the **expected calibration error** (ECE) with 10 equal-width
bins: each scored decision goes to the bin of its score ([0, 0.1], (0.1,
0.2], ... (0.9, 1.0]); in each bin the mean score is compared with the share
of its decisions that are correct, and the gaps are averaged, weighted by
the bins' sizes::

    ECE = sum over bins b of (n_b / N) * |accuracy_b - mean score_b|

0 is perfectly calibrated (of the entities scored 0.8, 80% are right); a
pipeline that writes 1.0 for everything has an ECE equal to its error rate,
which is what its "certainty" is worth. The decisions, per task:

- **entities**: each predicted entity with a score; correct when the gold
  document has an entity with the same character offsets and label;
- **categories**: exclusive schemas, each document's top category and its
  score, correct when it is the gold category; multi-label schemas, each
  label's yes/no decision with score ``max(p, 1 - p)``, correct when it
  matches the gold label;
- **relations**: each predicted relation with a score; correct when the gold
  document has the same (head span, tail span, label), either direction for
  a symmetric label.

Decisions without a score (rules and students that write none) are left out
and counted (``unscored``); when no decision has a score the ECE is ``None``
and reports say "no scores".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from spacy.tokens import Doc

BINS = 10


def expected_calibration_error(pairs: Iterable[tuple[float, bool]], bins: int = BINS) -> dict[str, Any]:
    """The ECE of ``(score, correct)`` decisions over ``bins`` equal-width bins, with the bins themselves.

    Returns ``ece`` (``None`` without decisions), ``n``, ``mean_score``,
    ``accuracy`` and ``bins``: for each non-empty bin its bounds, count, mean
    score and accuracy. A score outside [0, 1] is clipped into it.
    """
    counts = [0] * bins
    score_sums = [0.0] * bins
    correct_sums = [0] * bins
    for score, correct in pairs:
        value = min(1.0, max(0.0, float(score)))
        # (k/B, (k+1)/B] belongs to bin k, 0.0 to the first; rounding first keeps 0.3 * 10 = 3.0000000000000004 in (0.2, 0.3].
        index = min(bins - 1, max(0, math.ceil(round(value * bins, 9)) - 1))
        counts[index] += 1
        score_sums[index] += value
        correct_sums[index] += bool(correct)
    n = sum(counts)
    if not n:
        return {"ece": None, "n": 0, "mean_score": None, "accuracy": None, "bins": []}
    ece = sum(abs(correct_sums[k] / counts[k] - score_sums[k] / counts[k]) * counts[k] / n for k in range(bins) if counts[k])
    table = [
        {"lower": k / bins, "upper": (k + 1) / bins, "n": counts[k], "mean_score": score_sums[k] / counts[k],
         "accuracy": correct_sums[k] / counts[k]}
        for k in range(bins) if counts[k]
    ]
    return {"ece": ece, "n": n, "mean_score": sum(score_sums) / n, "accuracy": sum(correct_sums) / n, "bins": table}


def _with_unscored(result: dict[str, Any], unscored: int) -> dict[str, Any]:
    result["unscored"] = unscored
    return result


def entity_calibration(pairs: Iterable[tuple[Doc, Doc]]) -> dict[str, Any]:
    """The ECE of predicted entities' scores (``span._.score``) against ``(predicted, gold)`` Doc pairs."""
    decisions: list[tuple[float, bool]] = []
    unscored = 0
    for predicted, gold in pairs:
        truth = {(e.start_char, e.end_char, e.label_) for e in gold.ents}
        for ent in predicted.ents:
            score = ent._.score
            if score is None:
                unscored += 1
                continue
            decisions.append((score, (ent.start_char, ent.end_char, ent.label_) in truth))
    return _with_unscored(expected_calibration_error(decisions), unscored)


def _top(cats: Mapping[str, float]) -> Optional[str]:
    if not cats:
        return None
    label = max(cats, key=lambda k: cats[k])
    return label if cats[label] > 0 else None


def category_calibration(
    pairs: Iterable[tuple[Doc, Doc]], labels: Sequence[str], *, exclusive: bool = True, threshold: float = 0.5
) -> dict[str, Any]:
    """The ECE of category scores: the top category (exclusive) or each label's decision (multi-label)."""
    known = set(labels)
    decisions: list[tuple[float, bool]] = []
    for predicted, gold in pairs:
        pred = {k: v for k, v in predicted.cats.items() if k in known}
        truth = {k: v for k, v in gold.cats.items() if k in known}
        if exclusive:
            gold_label, pred_label = _top(truth), _top(pred)
            if gold_label is None or pred_label is None:
                continue  # no gold category to check against, or no decision (a failed document) to score
            decisions.append((pred[pred_label], pred_label == gold_label))
            continue
        for label, value in truth.items():
            if label not in pred:
                continue
            score = pred[label]
            decisions.append((max(score, 1.0 - score), (score >= threshold) == (value > 0)))
    return _with_unscored(expected_calibration_error(decisions), 0)


def relation_calibration(pairs: Iterable[tuple[Doc, Doc]], *, symmetric: Iterable[str] = ()) -> dict[str, Any]:
    """The ECE of predicted relations' scores; a ``symmetric`` label counts in either direction."""
    either_way = set(symmetric)
    decisions: list[tuple[float, bool]] = []
    unscored = 0
    for predicted, gold in pairs:
        truth = set()
        for rel in gold._.relations:
            head, tail = (rel.head.start_char, rel.head.end_char), (rel.tail.start_char, rel.tail.end_char)
            truth.add((head, tail, rel.label))
            if rel.label in either_way:
                truth.add((tail, head, rel.label))
        for rel in predicted._.relations:
            if rel.score is None:
                unscored += 1
                continue
            head, tail = (rel.head.start_char, rel.head.end_char), (rel.tail.start_char, rel.tail.end_char)
            decisions.append((rel.score, (head, tail, rel.label) in truth))
    return _with_unscored(expected_calibration_error(decisions), unscored)
