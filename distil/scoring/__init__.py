"""Scoring functions for each task: entities, categories, relations and the SemEval-2010 Task 8 measure.

Each function takes predicted and gold Docs (or labels) and returns a flat dict
of spaCy-style metric keys (``ents_f``, ``cats_macro_f``, ``rel_micro_f``,
``rel_semeval_macro_f``...), so that reports from every task read alike. This
is the one scorer of distil: ``distil evaluate``, ``distil compare``, the
review reports, the dev score of ``distil train`` and the benchmarks all use it.
:mod:`.calibration` adds the expected calibration error of the scores
predictions carry (``distil evaluate`` reports it next to accuracy).
"""

from __future__ import annotations

from .calibration import (
    BINS,
    category_calibration,
    entity_calibration,
    expected_calibration_error,
    relation_calibration,
)
from .categories import score_categories
from .entities import score_entities
from .relations import score_relations
from .semeval import OTHER, directed_label, score_semeval, semeval_answers
from .tasks import HEADLINE, SEMEVAL_HEADLINE, headline_score, score_task, symmetric_labels

__all__ = [
    "BINS",
    "HEADLINE",
    "OTHER",
    "SEMEVAL_HEADLINE",
    "category_calibration",
    "directed_label",
    "entity_calibration",
    "expected_calibration_error",
    "headline_score",
    "relation_calibration",
    "score_categories",
    "score_entities",
    "score_relations",
    "score_semeval",
    "score_task",
    "semeval_answers",
    "symmetric_labels",
]
