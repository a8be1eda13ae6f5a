"""One task's scores with its schema's settings, and the one figure that ranks models on it.

``distil evaluate`` reports these keys, ``distil compare`` ranks pipelines by
:data:`HEADLINE`, and ``distil train`` early-stops on the same headline of the
same scores over its dev set: a dev score in a model's manifest is a figure
``distil evaluate`` would print for that model on that data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Optional

from spacy.tokens import Doc

from ..schemas import RELSchema, TaskSchema, TextCatSchema
from .categories import score_categories
from .entities import score_entities
from .relations import score_relations

# Per task: the score key that ranks models, and how a table names it.
HEADLINE: dict[str, tuple[str, str]] = {
    "ner": ("ents_f", "entity F1"),
    "textcat": ("cats_accuracy", "accuracy"),
    "rel": ("rel_micro_f", "relation micro F1"),
}
SEMEVAL_HEADLINE = ("rel_semeval_macro_f", "SemEval macro-F1")


def symmetric_labels(schema: RELSchema) -> set[str]:
    """The relation labels whose head and tail may be swapped when scoring (declared ``symmetric``)."""
    return {spec.name for spec in schema.labels if spec.symmetric}


def score_task(task: str, pairs: Iterable[tuple[Doc, Doc]], schema: TaskSchema) -> dict[str, Any]:
    """The scores ``distil evaluate`` reports for ``task`` on ``(predicted, gold)`` Doc pairs.

    Entities use spaCy's NER scorer; categories use the schema's labels,
    exclusivity and threshold; relations count the schema's symmetric labels in
    either direction. Raises ``ValueError`` for an unknown task or a schema of
    another task.
    """
    pairs = list(pairs)
    if task == "ner":
        return score_entities(pairs)
    if task == "textcat" and isinstance(schema, TextCatSchema):
        return score_categories(
            pairs, list(schema.label_names), exclusive=schema.exclusive, threshold=schema.threshold
        )
    if task == "rel" and isinstance(schema, RELSchema):
        return score_relations(pairs, symmetric=symmetric_labels(schema))
    raise ValueError(f"cannot score task {task!r} with a {type(schema).__name__}")


def headline_score(task: str, scores: Mapping[str, Any], *, semeval: bool = False) -> Optional[float]:
    """The figure that ranks models on ``task`` (:data:`HEADLINE`), or ``None`` when nothing was measured."""
    key, _ = SEMEVAL_HEADLINE if task == "rel" and semeval else HEADLINE[task]
    value = scores.get(key)
    return None if value is None else float(value)
