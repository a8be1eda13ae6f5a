"""How sure a pipeline was about a document: one confidence per task and one per document, from the written scores.

This is the one definition every doubt-driven step uses (``distil review
export --order uncertainty``, ``review simulate``, the Prodigy and Label
Studio exports). It reads only what the canonical writers put on a Doc and
what a record carries, so a confidence is the same whether computed on a
live Doc, a DocBin or a ``records.jsonl`` line:

- **ner**: the lowest entity score (``span._.score``); for a document without
  entities, the probability the backend gave to its empty answer
  (:func:`distil.annotations.write_empty_score`: the LLM's probability of
  writing ``[]``, 1.0 when there was no text to ask about).
- **rel**: the lowest relation score; without relations, the probability of
  the empty answer, as for entities.
- **textcat**: exclusive categories, the top category score (the LLM writes a
  distribution over the candidates); multi-label, the least decided label,
  ``min(max(p, 1 - p))``.
- **the document**: the lowest of its tasks' confidences; 0.0 when a
  component failed on it (what it wrote is incomplete).

A task whose backend wrote no score at all (rules without scores, spaCy's
``ner``, an LLM without log-probabilities on an empty answer) has no
confidence, and a document none of whose tasks has one gets ``None``. The
confidence is computed when it is needed, never stored: a record whose
annotations a person corrected cannot carry a stale teacher confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Union

from spacy.tokens import Doc

from .records import EMPTY_SCORES_META, DocRecord, to_record


def is_multi_label(cats: Mapping[str, float]) -> bool:
    """Whether category scores look multi-label: exclusive scores (a distribution, or one 1.0) sum to 1."""
    return bool(cats) and abs(sum(cats.values()) - 1.0) > 1e-3 and any(0 < v < 1 for v in cats.values())


def task_confidences(record: Union[DocRecord, Doc]) -> dict[str, float]:
    """The confidence of each task that left a score on the document (see the module docstring); tasks without one are absent."""
    rec = to_record(record) if isinstance(record, Doc) else record
    empty = rec.meta.get(EMPTY_SCORES_META) or {}
    out: dict[str, float] = {}
    entity_scores = [e.score for e in rec.entities if e.score is not None]
    if entity_scores:
        out["ner"] = min(entity_scores)
    elif not rec.entities and "ner" in empty:
        out["ner"] = float(empty["ner"])
    relation_scores = [r.score for r in rec.relations if r.score is not None]
    if relation_scores:
        out["rel"] = min(relation_scores)
    elif not rec.relations and "rel" in empty:
        out["rel"] = float(empty["rel"])
    if rec.cats:
        if is_multi_label(rec.cats):
            out["textcat"] = min(max(v, 1 - v) for v in rec.cats.values())
        else:
            out["textcat"] = max(rec.cats.values())
    return out


def document_confidence(record: Union[DocRecord, Doc]) -> Optional[float]:
    """How sure the pipeline was about the whole document: its least confident task, 0.0 after a failure, ``None`` without scores."""
    rec = to_record(record) if isinstance(record, Doc) else record
    if rec.meta.get("failures"):
        return 0.0
    values = task_confidences(rec).values()
    return min(values) if values else None
