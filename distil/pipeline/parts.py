"""The objects a pipeline component is made of, and the distil hooks they implement.

distil's hooks (:mod:`distil.protocols`: ``distil_task``, ``distil_usage()``,
``distil_model_files()``, ``distil_use_cache()``, ``distil_check_ready()``)
may sit on the component itself or, for spacy-llm's ``llm`` component, on the
task or model object it wraps. Commands look them up among
:func:`component_parts` with ``isinstance`` (the protocols are
runtime-checkable), so application-facing code needs no backend-specific
branches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from spacy.language import Language

from ..protocols import ChecksReady, ListsModelFiles, SwitchesCache


def component_parts(pipe: Any) -> Iterator[Any]:
    """The component, then the model and task objects it wraps (those it has).

    spacy-llm's ``llm`` component exposes its task as the public ``task``
    property; spacy-llm 0.7 has no public accessor for the model, which it keeps
    in ``_model``, so that one attribute is read directly. The model comes
    first so that a usage line starts with its requests, as it always has.
    """
    yield pipe
    for attribute in ("_model", "task"):
        part = getattr(pipe, attribute, None)
        if part is not None:
            yield part


def check_ready(nlp: Language) -> None:
    """Call ``distil_check_ready()`` on every component that implements it (a pipeline built from a config)."""
    for _, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            if isinstance(part, ChecksReady):
                part.distil_check_ready()


def model_files(nlp: Language) -> dict[str, list[Path]]:
    """Per component name, the weight files it runs (components that report them)."""
    out: dict[str, list[Path]] = {}
    for name, pipe in nlp.pipeline:
        reporting = [part for part in component_parts(pipe) if isinstance(part, ListsModelFiles)]
        if reporting:
            # The first part that lists files speaks for the component (an encoder, or the model of an llm).
            files = [Path(f) for f in reporting[0].distil_model_files()]
            if files:
                out[name] = files
    return out


def model_size_bytes(nlp: Language) -> int:
    """Bytes on disk of the weight files the pipeline runs (each file once; 0 if none reported)."""
    files = {f.resolve() for paths in model_files(nlp).values() for f in paths}
    return sum(f.stat().st_size for f in files if f.exists())


@contextmanager
def response_caches_off(nlp: Language) -> Iterator[None]:
    """Within the block, components that keep a response cache (the LLM models) answer without it."""
    switched: list[SwitchesCache] = []
    for _, pipe in nlp.pipeline:
        for part in component_parts(pipe):
            if isinstance(part, SwitchesCache):
                part.distil_use_cache(False)
                switched.append(part)
    try:
        yield
    finally:
        for part in switched:
            part.distil_use_cache(True)
