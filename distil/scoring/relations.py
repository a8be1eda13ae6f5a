"""Relation scores: micro and macro P/R/F over (head span, tail span, label) triples.

A predicted relation is correct when a gold relation has the same label and
the same head and tail character spans; for a symmetric label the order of head
and tail does not matter. Matching by character offsets makes the score
independent of tokenisation, and an entity boundary error makes every relation
of that entity wrong, as in end-to-end relation extraction benchmarks.

The ``rel_strict_*`` scores are the strict end-to-end measure (as in SpERT and
the FIRE paper): a relation counts only when both entity spans, both entity
types and the relation label are right. With gold entities given the two
measures agree; end to end, the gap between them is the relations lost to
entity type errors alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from spacy.scorer import PRFScore
from spacy.tokens import Doc

Triple = tuple[tuple[Any, ...], tuple[Any, ...], str]
_KEYS = ("micro_p", "micro_r", "micro_f", "macro_p", "macro_r", "macro_f", "per_type")


def relation_triples(doc: Doc, symmetric: Collection[str] = (), *, typed: bool = False) -> set[Triple]:
    """The relations of ``doc`` as ``((head_start, head_end), (tail_start, tail_end), label)`` char triples.

    Relations whose label is in ``symmetric`` are stored with the earlier span
    first, so that (a, b) and (b, a) compare equal. With ``typed`` each span
    also carries its entity label (``(start, end, label)``): the strict measure.
    """
    out: set[Triple] = set()
    for rel in doc._.relations:
        head: tuple[Any, ...] = (rel.head.start_char, rel.head.end_char)
        tail: tuple[Any, ...] = (rel.tail.start_char, rel.tail.end_char)
        if rel.label in symmetric and tail < head:
            head, tail = tail, head
            if typed:
                head, tail = (*head, rel.tail.label_), (*tail, rel.head.label_)
        elif typed:
            head, tail = (*head, rel.head.label_), (*tail, rel.tail.label_)
        out.add((head, tail, rel.label))
    return out


def score_relations(pairs: Iterable[tuple[Doc, Doc]], *, symmetric: Collection[str] = ()) -> dict[str, Any]:
    """Score ``(predicted, gold)`` Doc pairs on ``doc._.relations``.

    Returns ``rel_micro_p/r/f`` (pooled over all labels), ``rel_macro_p/r/f``
    (the mean of per-label values over every label seen in the gold data or
    the predictions) and ``rel_per_type`` (``{label: {"p", "r", "f"}}``), with
    spans matched by their character offsets; and the same figures of the
    strict measure (entity types must match too) as ``rel_strict_micro_p/r/f``,
    ``rel_strict_macro_p/r/f`` and ``rel_strict_per_type``. Values are ``None``
    when there is no relation on either side.
    """
    pairs = list(pairs)
    scores = _prf("rel", pairs, symmetric, typed=False)
    scores.update(_prf("rel_strict", pairs, symmetric, typed=True))
    return scores


def _prf(prefix: str, pairs: list[tuple[Doc, Doc]], symmetric: Collection[str], *, typed: bool) -> dict[str, Any]:
    per_type: dict[str, PRFScore] = {}
    for predicted, gold in pairs:
        pred = relation_triples(predicted, symmetric, typed=typed)
        ref = relation_triples(gold, symmetric, typed=typed)
        for triple in pred | ref:
            prf = per_type.setdefault(triple[2], PRFScore())
            if triple in pred and triple in ref:
                prf.tp += 1
            elif triple in pred:
                prf.fp += 1
            else:
                prf.fn += 1
    if not per_type:
        return {f"{prefix}_{key}": None for key in _KEYS}
    micro = PRFScore()
    for prf in per_type.values():
        micro += prf
    n = len(per_type)
    return {
        f"{prefix}_micro_p": micro.precision,
        f"{prefix}_micro_r": micro.recall,
        f"{prefix}_micro_f": micro.fscore,
        f"{prefix}_macro_p": sum(prf.precision for prf in per_type.values()) / n,
        f"{prefix}_macro_r": sum(prf.recall for prf in per_type.values()) / n,
        f"{prefix}_macro_f": sum(prf.fscore for prf in per_type.values()) / n,
        f"{prefix}_per_type": {label: per_type[label].to_dict() for label in sorted(per_type)},
    }
