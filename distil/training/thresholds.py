"""Tune the relation model's ``no relation`` decision on dev, for the manifest's ``decision``.

A relation classifier trained with cross-entropy over ``no relation`` and the
labels tends to over- or under-predict relations depending on how many
candidate pairs are negatives; the argmax decision has no knob for that. The
threshold rule (:func:`distil.components.encoder.relations.decide`) predicts the
most probable relation label of a pair when its probability reaches a
threshold. Here that threshold is chosen to maximise relation micro-F1 on dev,
globally and then per label; per-label thresholds are kept only when they gain
at least ``min_gain`` F1 on dev over the global one (a small dev set makes
them overfit otherwise), and the threshold rule only when it beats argmax.

Micro-F1 counts here follow :mod:`distil.scoring.relations` (a gold relation
the model could not read, or that no candidate covers, is a false negative);
a symmetric label predicted in both directions counts twice here but once
there, which only matters for schemas with symmetric labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..components.encoder.manifest import ARGMAX, THRESHOLD


@dataclass(frozen=True)
class ScoredCandidate:
    """A dev candidate pair: the labels it allows, the model's probabilities over ``[no relation, *allowed]``, and its gold labels."""

    allowed: tuple[str, ...]
    probs: Optional[np.ndarray]
    gold: frozenset[str]


def _f1(tp: float, fp: float, fn: float) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _best_cut(probs: np.ndarray, correct: np.ndarray, base_tp: float, base_fp: float, n_gold: int) -> tuple[float, float]:
    """The threshold over ``probs`` (candidates decided by it) that maximises micro-F1, and that F1.

    ``base_tp``/``base_fp`` are the counts of the candidates decided otherwise;
    the threshold is the midpoint between the last probability kept and the
    next, so that a tiny numeric difference (int8 vs fp32) rarely flips a pair.
    """
    if probs.size == 0:
        return 1.0, _f1(base_tp, base_fp, n_gold - base_tp)
    order = np.argsort(-probs, kind="stable")
    sorted_probs = probs[order]
    tp = base_tp + np.concatenate([[0.0], np.cumsum(correct[order])])
    fp = base_fp + np.concatenate([[0.0], np.cumsum(~correct[order])])
    f1 = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + (n_gold - tp), 1e-9), 0.0)
    # Only cut between distinct probabilities: equal ones cannot be told apart by a threshold.
    valid = np.ones(len(f1), dtype=bool)
    valid[1:-1] = sorted_probs[:-1] > sorted_probs[1:]
    f1 = np.where(valid, f1, -1.0)
    k = int(f1.argmax())
    if k == 0:
        threshold = float(min(1.0, sorted_probs[0] + 1e-6))
    elif k == len(sorted_probs):
        threshold = float(sorted_probs[-1] / 2)
    else:
        threshold = float((sorted_probs[k - 1] + sorted_probs[k]) / 2)
    return threshold, float(f1[k])


def tune_decision(candidates: Sequence[ScoredCandidate], n_gold: int, min_gain: float = 0.005) -> dict[str, Any]:
    """The decision to store in the manifest: argmax, or thresholds tuned for dev micro-F1.

    ``n_gold`` is the number of gold relations in dev (those no candidate covers
    included). The result always carries ``dev_micro_f``: the dev micro-F1 of
    each rule tried, so the manifest shows what the choice gained.
    """
    readable = [(c, c.probs) for c in candidates if c.probs is not None]
    best_label = [c.allowed[int(probs[1:].argmax())] for c, probs in readable]
    best_prob = np.array([float(probs[1:].max()) for _, probs in readable], dtype=np.float64)
    correct = np.array([label in c.gold for label, (c, _) in zip(best_label, readable, strict=True)], dtype=np.bool_)
    argmax_pred = np.array([int(probs.argmax()) > 0 for _, probs in readable], dtype=np.bool_)
    tp = float((argmax_pred & correct).sum())
    argmax_f = _f1(tp, float(argmax_pred.sum()) - tp, n_gold - tp)
    threshold, global_f = _best_cut(best_prob, correct, 0.0, 0.0, n_gold)
    per_label: dict[str, float] = {}
    current = best_prob >= threshold
    labels = sorted(set(best_label))
    label_array = np.array(best_label, dtype=object)
    # Two rounds of coordinate ascent: each label's threshold with the others fixed.
    for _ in range(2):
        for label in labels:
            mine = label_array == label
            others = current & ~mine
            base_tp = float((others & correct).sum())
            cut, _ = _best_cut(best_prob[mine], correct[mine], base_tp, float(others.sum()) - base_tp, n_gold)
            per_label[label] = cut
            current = np.where(mine, best_prob >= cut, current)
    tp_label = float((current & correct).sum())
    per_label_f = _f1(tp_label, float(current.sum()) - tp_label, n_gold - tp_label)
    scores = {"argmax": argmax_f, "threshold": global_f, "per_label": per_label_f}
    if max(global_f, per_label_f) <= argmax_f:
        return {"rule": ARGMAX, "tuned_on": "dev", "dev_micro_f": scores}
    decision: dict[str, Any] = {"rule": THRESHOLD, "threshold": round(threshold, 6), "tuned_on": "dev", "dev_micro_f": scores}
    if per_label_f >= global_f + min_gain:
        decision["per_label"] = {label: round(value, 6) for label, value in sorted(per_label.items())}
    return decision
