"""Which task a pipeline component performs, whatever its backend.

Commands such as ``evaluate`` need to know whether a pipeline predicts
entities, categories or relations (for instance to feed gold entities to a
relation-only pipeline). distil components declare it with a ``distil_task``
attribute (:class:`distil.protocols.DeclaresTask`, on the component or on the
spacy-llm task it wraps); spaCy's own trainable and rule components are
recognised by type.
"""

from __future__ import annotations

from typing import Any, Optional

from spacy.language import Language
from spacy.pipeline import EntityRecognizer, EntityRuler, SpanRuler, TextCategorizer

from ..protocols import DeclaresTask
from ..schemas import TASKS, TaskName
from .parts import component_parts


def component_task(pipe: Any) -> Optional[TaskName]:
    """The task (``"ner"``, ``"textcat"``, ``"rel"``) a component performs, or ``None``."""
    for part in component_parts(pipe):
        if isinstance(part, DeclaresTask) and part.distil_task in TASKS:
            return part.distil_task  # type: ignore[return-value]
    if isinstance(pipe, (EntityRecognizer, EntityRuler)):
        return "ner"
    if isinstance(pipe, SpanRuler) and getattr(pipe, "annotate_ents", False):
        return "ner"
    if isinstance(pipe, TextCategorizer):
        return "textcat"
    return None


def pipeline_tasks(nlp: Language) -> dict[str, TaskName]:
    """Map each component name that performs a known task to that task."""
    out: dict[str, TaskName] = {}
    for name, pipe in nlp.pipeline:
        task = component_task(pipe)
        if task is not None:
            out[name] = task
    return out
