"""Scores of predicted Docs against gold Docs, as used for early stopping and the accuracy runs.

- ner: exact-match entity precision/recall/F1 (micro), per label;
- textcat: accuracy for exclusive schemas, micro F1 at the threshold for multi-label, macro F1;
- rel: micro P/R/F1 over directed (head, tail, label) triples and macro F1 over the relation labels,
  which for one relation per sentence is SemEval-2010 Task 8's official direction-aware score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

from spacy.tokens import Doc

from ...schemas import TextCatSchema


def _prf(tp: int, predicted: int, gold: int) -> dict[str, float]:
    p = tp / predicted if predicted else 0.0
    r = tp / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def _set_scores(pairs: Iterable[tuple[set[tuple[Hashable, str]], set[tuple[Hashable, str]]]]) -> dict[str, object]:
    tp: Counter[str] = Counter()
    pred: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    for predicted, expected in pairs:
        for item in predicted:
            pred[item[1]] += 1
        for item in expected:
            gold[item[1]] += 1
        for item in predicted & expected:
            tp[item[1]] += 1
    micro = _prf(sum(tp.values()), sum(pred.values()), sum(gold.values()))
    per_label = {label: _prf(tp[label], pred[label], gold[label]) for label in sorted(set(pred) | set(gold))}
    return {"micro": micro, "per_label": per_label}


def score_entities(predicted: Sequence[Doc], gold: Sequence[Doc]) -> dict[str, object]:
    """Exact-match entity scores; ``score`` is the micro F1."""
    result = _set_scores(
        ({((e.start_char, e.end_char), e.label_) for e in p.ents}, {((e.start_char, e.end_char), e.label_) for e in g.ents})
        for p, g in zip(predicted, gold, strict=True)
    )
    result["score"] = result["micro"]["f"]  # type: ignore[index]
    return result


def score_cats(predicted: Sequence[Doc], gold: Sequence[Doc], schema: TextCatSchema) -> dict[str, object]:
    """Accuracy (exclusive) or micro F1 (multi-label); ``score`` is the one that applies."""
    pairs: list[tuple[set[tuple[Hashable, str]], set[tuple[Hashable, str]]]] = []
    correct = 0
    for p, g in zip(predicted, gold, strict=True):
        predicted_labels = set(schema.predicted(p.cats))
        gold_labels = {label for label, value in g.cats.items() if value >= 0.5}
        correct += predicted_labels == gold_labels
        pairs.append(({(0, label) for label in predicted_labels}, {(0, label) for label in gold_labels}))
    result = _set_scores(pairs)
    per_label: dict[str, dict[str, float]] = result["per_label"]  # type: ignore[assignment]
    result["accuracy"] = correct / len(gold) if gold else 0.0
    result["macro_f"] = sum(v["f"] for v in per_label.values()) / len(per_label) if per_label else 0.0
    result["score"] = result["accuracy"] if schema.exclusive else result["micro"]["f"]  # type: ignore[index]
    return result


def score_relations(
    predicted: Sequence[Doc], gold: Sequence[Doc], labels: Sequence[str], *, top1: bool = False
) -> dict[str, object]:
    """Directed relation scores; ``score`` is the micro F1, ``macro_f`` the mean F1 over ``labels``.

    With ``top1`` only the highest-scoring predicted relation of each doc
    counts: SemEval-2010 Task 8 assigns one label per sentence.
    """

    def triples(doc: Doc, best_only: bool) -> set[tuple[Hashable, str]]:
        relations = list(doc._.relations)
        if best_only and relations:
            relations = [max(relations, key=lambda r: -1.0 if r.score is None else r.score)]
        return {((r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char), r.label) for r in relations}

    result = _set_scores((triples(p, top1), triples(g, False)) for p, g in zip(predicted, gold, strict=True))
    per_label: dict[str, dict[str, float]] = result["per_label"]  # type: ignore[assignment]
    result["macro_f"] = sum(per_label.get(label, {"f": 0.0})["f"] for label in labels) / len(labels) if labels else 0.0
    result["score"] = result["micro"]["f"]  # type: ignore[index]
    return result
