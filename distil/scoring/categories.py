"""Category scores with spaCy's semantics, including documents without predictions.

The counting follows ``spacy.scorer.Scorer.score_cats`` (same keys, same
per-label true/false positives, macro averages over every label): in an
exclusive schema the highest-scoring predicted label is compared with the
highest-scoring gold label; in a multi-label schema each label is positive when
its score reaches the threshold. It is re-implemented here because spaCy's
version crashes on an exclusive document whose prediction is empty (a document
the pipeline failed on), which an evaluation must count as a miss. One
deliberate difference: in an exclusive schema a prediction whose scores are all
zero (rules that did not fire) is an abstention, a miss for the gold label,
where spaCy would count a false positive for whichever label comes first.
Accuracy is added: argmax equality for exclusive schemas, exact label-set equality otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spacy.scorer import PRFScore
from spacy.tokens import Doc


def _argmax(cats: Mapping[str, float]) -> str | None:
    if not cats:
        return None
    label = max(cats, key=lambda k: cats[k])
    return label if cats[label] > 0 else None


def score_categories(
    pairs: Iterable[tuple[Doc, Doc]],
    labels: Sequence[str],
    *,
    exclusive: bool = True,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Score ``(predicted, gold)`` Doc pairs on ``doc.cats``.

    Returns ``cats_accuracy``, ``cats_micro_p/r/f``, ``cats_macro_p/r/f`` and
    ``cats_f_per_type`` (``{label: {"p", "r", "f"}}``) over ``labels``; a gold
    document without any positive category is not scored. Labels outside
    ``labels`` are ignored on both sides.
    """
    known = set(labels)
    per_type = {label: PRFScore() for label in labels}
    scored = correct = 0
    for predicted, gold in pairs:
        pred_cats = {k: v for k, v in predicted.cats.items() if k in known}
        gold_cats = {k: v for k, v in gold.cats.items() if k in known}
        if exclusive:
            gold_label = _argmax(gold_cats)
            if gold_label is None:
                continue
            # No prediction (a failed doc) or only zero scores (rules that did not fire) is an
            # abstention: a miss for the gold label, not a false positive for whichever label is first.
            pred_label = _argmax(pred_cats)
            scored += 1
            if pred_label == gold_label:
                per_type[gold_label].tp += 1
                correct += 1
            else:
                per_type[gold_label].fn += 1
                if pred_label is not None:
                    per_type[pred_label].fp += 1
            continue
        gold_set = {k for k, v in gold_cats.items() if v > 0}
        pred_set = {k for k, v in pred_cats.items() if v >= threshold and k in gold_cats}
        scored += 1
        correct += gold_set == pred_set
        # As in spaCy, a label absent from the gold cats is unknown, not negative.
        for label in gold_cats:
            if label in pred_set and label in gold_set:
                per_type[label].tp += 1
            elif label in pred_set:
                per_type[label].fp += 1
            elif label in gold_set:
                per_type[label].fn += 1
    micro = PRFScore()
    for prf in per_type.values():
        micro += prf
    n_labels = len(per_type) or 1
    return {
        "cats_accuracy": correct / scored if scored else None,
        "cats_micro_p": micro.precision,
        "cats_micro_r": micro.recall,
        "cats_micro_f": micro.fscore,
        "cats_macro_p": sum(prf.precision for prf in per_type.values()) / n_labels,
        "cats_macro_r": sum(prf.recall for prf in per_type.values()) / n_labels,
        "cats_macro_f": sum(prf.fscore for prf in per_type.values()) / n_labels,
        "cats_f_per_type": {label: prf.to_dict() for label, prf in per_type.items()},
        "cats_docs": scored,
    }
