"""Relation scores: micro and macro P/R/F over (head span, tail span, label) triples.

A predicted relation is correct when a gold relation has the same label and
the same head and tail character spans; for a symmetric label the order of head
and tail does not matter. Matching by character offsets makes the score
independent of tokenisation, and an entity boundary error makes every relation
of that entity wrong, as in end-to-end relation extraction benchmarks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from spacy.scorer import PRFScore
from spacy.tokens import Doc

Triple = tuple[tuple[int, int], tuple[int, int], str]


def relation_triples(doc: Doc, symmetric: Collection[str] = ()) -> set[Triple]:
    """The relations of ``doc`` as ``((head_start, head_end), (tail_start, tail_end), label)`` char triples.

    Relations whose label is in ``symmetric`` are stored with the earlier span
    first, so that (a, b) and (b, a) compare equal.
    """
    out: set[Triple] = set()
    for rel in doc._.relations:
        head = (rel.head.start_char, rel.head.end_char)
        tail = (rel.tail.start_char, rel.tail.end_char)
        if rel.label in symmetric and tail < head:
            head, tail = tail, head
        out.add((head, tail, rel.label))
    return out


def score_relations(pairs: Iterable[tuple[Doc, Doc]], *, symmetric: Collection[str] = ()) -> dict[str, Any]:
    """Score ``(predicted, gold)`` Doc pairs on ``doc._.relations``.

    Returns ``rel_micro_p/r/f`` (pooled over all labels), ``rel_macro_p/r/f``
    (the mean of per-label values over every label seen in the gold data or
    the predictions) and ``rel_per_type`` (``{label: {"p", "r", "f"}}``).
    Values are ``None`` when there is no relation on either side.
    """
    per_type: dict[str, PRFScore] = {}
    for predicted, gold in pairs:
        pred = relation_triples(predicted, symmetric)
        ref = relation_triples(gold, symmetric)
        for triple in pred | ref:
            prf = per_type.setdefault(triple[2], PRFScore())
            if triple in pred and triple in ref:
                prf.tp += 1
            elif triple in pred:
                prf.fp += 1
            else:
                prf.fn += 1
    if not per_type:
        return {key: None for key in (
            "rel_micro_p", "rel_micro_r", "rel_micro_f", "rel_macro_p", "rel_macro_r", "rel_macro_f", "rel_per_type"
        )}
    micro = PRFScore()
    for prf in per_type.values():
        micro += prf
    n = len(per_type)
    return {
        "rel_micro_p": micro.precision,
        "rel_micro_r": micro.recall,
        "rel_micro_f": micro.fscore,
        "rel_macro_p": sum(prf.precision for prf in per_type.values()) / n,
        "rel_macro_r": sum(prf.recall for prf in per_type.values()) / n,
        "rel_macro_f": sum(prf.fscore for prf in per_type.values()) / n,
        "rel_per_type": {label: per_type[label].to_dict() for label in sorted(per_type)},
    }
