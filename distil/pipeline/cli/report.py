"""Print what a pipeline run cost: requests, tokens, failures, latency, from components that track it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import typer
from spacy.language import Language

from ..usage import collect_usage


def print_usage_report(nlp: Language) -> None:
    """Print the usage of every reporting component to stderr (nothing if none report)."""
    print_usage_table(collect_usage(nlp))


def print_usage_table(usage: Mapping[str, Mapping[str, Any]]) -> None:
    """Print usage figures per component (:func:`collect_usage`'s shape, or an engine's merged one) to stderr."""
    for name, figures in usage.items():
        parts = ", ".join(f"{key}={_fmt(value)}" for key, value in figures.items())
        typer.echo(f"  [{name}] {parts}", err=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)
