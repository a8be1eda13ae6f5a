"""The objects a pipeline component is made of, where optional hooks live.

distil's hooks (``distil_task``, ``distil_usage()``, ``distil_model_files()``,
``distil_use_cache()``)
may sit on the component itself or, for spacy-llm's ``llm`` component, on the
task or model object it wraps. Commands look them up through
:func:`component_parts`, so application-facing code needs no backend-specific
branches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spacy.language import Language


def component_parts(pipe: Any) -> Iterator[Any]:
    """The component, then the task and model objects it wraps (those it has)."""
    yield pipe
    for attribute in ("task", "_task", "_model"):
        part = getattr(pipe, attribute, None)
        if part is not None:
            yield part


def model_files(nlp: Language) -> dict[str, list[Path]]:
    """Per component name, the weight files it runs (components that report them)."""
    out: dict[str, list[Path]] = {}
    for name, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            report = getattr(part, "distil_model_files", None)
            if callable(report):
                files = [Path(f) for f in report()]
                if files:
                    out[name] = files
                break
    return out


def model_size_bytes(nlp: Language) -> int:
    """Bytes on disk of the weight files the pipeline runs (each file once; 0 if none reported)."""
    files = {f.resolve() for paths in model_files(nlp).values() for f in paths}
    return sum(f.stat().st_size for f in files if f.exists())


@contextmanager
def response_caches_off(nlp: Language) -> Iterator[None]:
    """Within the block, components that keep a response cache (the LLM models) answer without it."""
    switched = []
    for _, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            switch = getattr(part, "distil_use_cache", None)
            if callable(switch):
                switch(False)
                switched.append(switch)
    try:
        yield
    finally:
        for switch in switched:
            switch(True)
