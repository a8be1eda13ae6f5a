"""Scoring functions for each task: entities, categories, relations and the SemEval-2010 Task 8 measure.

Each function takes predicted and gold Docs (or labels) and returns a flat dict
of spaCy-style metric keys (``ents_f``, ``cats_macro_f``, ``rel_micro_f``,
``rel_semeval_macro_f``...), so that reports from every task read alike.
"""

from __future__ import annotations

from .categories import score_categories
from .entities import score_entities
from .relations import score_relations
from .semeval import OTHER, directed_label, score_semeval

__all__ = ["OTHER", "directed_label", "score_categories", "score_entities", "score_relations", "score_semeval"]
