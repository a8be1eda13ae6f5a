"""Print what a pipeline run cost: requests, tokens, failures, latency, from components that track it.

Components that call paid or slow services (the LLM backend) expose a
``distil_usage()`` method returning a flat dict of figures; this module only
prints them, so application-facing commands need no backend-specific code.
"""

from __future__ import annotations

from typing import Any

import typer
from spacy.language import Language


def collect_usage(nlp: Language) -> dict[str, dict[str, Any]]:
    """Usage figures per component name, for components that report any."""
    out: dict[str, dict[str, Any]] = {}
    for name, pipe in nlp.pipeline:
        report = getattr(pipe, "distil_usage", None)
        if callable(report):
            figures = report()
            if figures:
                out[name] = dict(figures)
    return out


def print_usage_report(nlp: Language) -> None:
    """Print the usage of every reporting component to stderr (nothing if none report)."""
    for name, figures in collect_usage(nlp).items():
        parts = ", ".join(f"{key}={_fmt(value)}" for key, value in figures.items())
        typer.echo(f"  [{name}] {parts}", err=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)
