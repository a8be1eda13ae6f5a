"""Usage figures (requests, tokens, cost, latency, answer counters) of the components that track them.

The one usage path of distil: parts of a component that implement
:class:`distil.protocols.ReportsUsage` (the LLM backend's model and task, which
spacy-llm's ``llm`` component wraps) return a flat dict of figures from
``distil_usage()``; :func:`collect_usage` merges the figures of every part of a
component into one entry per component name. ``distil run``, ``annotate``,
``evaluate`` and ``compare`` print and store what it returns, so the model's
requests, tokens and cost sit beside the task's counters (documents, failed
documents, ``ungrounded`` mentions, ``rejected_relations``). Counters
accumulate over the pipeline's life; :func:`reset_usage` zeroes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spacy.language import Language

from ..protocols import ReportsUsage
from .parts import component_parts


def collect_usage(nlp: Language) -> dict[str, dict[str, Any]]:
    """Usage figures per component name, for components with a part that reports any.

    The figures of a component's parts are merged in part order (component,
    model, task); the parts use distinct keys (see :class:`ReportsUsage`).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, pipe in nlp.pipeline:
        parts = [part for part in component_parts(pipe) if isinstance(part, ReportsUsage)]
        if not parts:
            continue
        figures: dict[str, Any] = {}
        for part in parts:
            figures.update(part.distil_usage())
        if figures:
            out[name] = figures
    return out


def reset_usage(nlp: Language) -> None:
    """Zero the usage counters of every component that reports usage (to measure one run of a warm pipeline)."""
    for _, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            if isinstance(part, ReportsUsage):
                part.distil_reset_usage()


def usage_totals(usage: Mapping[str, Mapping[str, Any]], keys: tuple[str, ...]) -> dict[str, float]:
    """The sums of ``keys`` over every component of a :func:`collect_usage` result (keys no component has are left out)."""
    totals: dict[str, float] = {}
    for figures in usage.values():
        for key in keys:
            value = figures.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    return totals
