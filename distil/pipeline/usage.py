"""Usage figures (requests, tokens, cost, latency) of the components that track them.

Components that call paid or slow services (the LLM backend) expose a
``distil_usage()`` method returning a flat dict of figures, on the component
itself or on the task or model object it wraps (spacy-llm's ``llm`` component
wraps a task and a model). Commands collect
them through :func:`collect_usage`, so application-facing code needs no
backend-specific branches.
"""

from __future__ import annotations

from typing import Any

from spacy.language import Language

from .parts import component_parts


def collect_usage(nlp: Language) -> dict[str, dict[str, Any]]:
    """Usage figures per component name, for components that report any."""
    out: dict[str, dict[str, Any]] = {}
    for name, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            report = getattr(part, "distil_usage", None)
            if callable(report):
                figures = report()
                if figures:
                    out[name] = dict(figures)
                break
    return out
