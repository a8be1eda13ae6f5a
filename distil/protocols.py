"""The hooks a backend may implement so that distil's commands work with it without backend-specific code.

A spaCy pipeline component, or an object it wraps (spacy-llm's ``llm``
component wraps a task and a model), opts into a command's behaviour by
implementing one or more of these hooks. Each hook is its own small
:class:`typing.Protocol`, checkable with ``isinstance`` at run time, because a
part implements only the hooks that concern it: an LLM task declares its task
and counts its answers, the model it runs reports requests and switches its
cache, an encoder declares its task, lists its files and checks that they are
there. The application layer finds the parts of a component with
:func:`distil.pipeline.parts.component_parts` and asks each for the hooks it
needs; a new backend implements the hooks below and needs nothing else.

=====================  ==========================================  ==========================================
hook                   implemented by                              used by
=====================  ==========================================  ==========================================
``distil_task``        every distil component or LLM task          ``evaluate``, ``compare``, ``annotate``
``distil_usage``       LLM models and LLM tasks                    the usage report of ``run``/``annotate``/
                                                                   ``evaluate``/``compare``
``distil_model_files`` encoder components, the in-process LLM       ``compare`` (model size)
``distil_use_cache``   LLM models with a response cache            ``evaluate``/``compare`` ``--no-cache``
``distil_check_ready`` encoder components                          ``distil.load`` (fail at load, not per doc)
``distil_fingerprint`` LLM tasks (their prompt template)            ``annotate`` (the job's fingerprint)
=====================  ==========================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Union, runtime_checkable


@runtime_checkable
class DeclaresTask(Protocol):
    """A part that performs one of distil's tasks."""

    distil_task: str
    """``"ner"``, ``"textcat"`` or ``"rel"``: which annotations the component writes (entities to
    ``doc.ents``, categories to ``doc.cats``, relations to ``doc._.relations``). Commands use it to
    know what to score and to feed gold entities to a relation-only pipeline."""


@runtime_checkable
class ReportsUsage(Protocol):
    """A part whose work costs something worth reporting: requests, tokens, money, latency, answer counts."""

    def distil_usage(self) -> Mapping[str, Any]:
        """The figures of this part since it was built (or last reset), as a flat JSON-ready mapping.

        Values are numbers or small dicts of numbers (failures by kind), never
        raw lists. The figures of every part of a component are merged into
        that component's line of the usage report, so parts of one component
        must use distinct keys: an LLM model reports ``requests``, ``cache_hits``,
        ``prompt_tokens``, ``completion_tokens``, ``cost``, ``latency_p50_ms``,
        ``failures``...; an LLM task reports ``docs``, ``failed_docs`` and its
        counters such as ``ungrounded`` mentions or ``rejected_relations``. A
        component that implements this hook is treated as metered: ``evaluate``
        times it on one pass, without warm-up.
        """
        ...

    def distil_reset_usage(self) -> None:
        """Zero the figures :meth:`distil_usage` reports (prices and settings stay)."""
        ...


@runtime_checkable
class ListsModelFiles(Protocol):
    """A part that runs weights from files (what the pipeline costs on disk)."""

    def distil_model_files(self) -> Sequence[Union[str, Path]]:
        """The weight and tokenizer files this part runs; empty while none is loaded."""
        ...


@runtime_checkable
class SwitchesCache(Protocol):
    """A part that may answer from a cache of earlier answers (the LLM response cache)."""

    def distil_use_cache(self, enabled: bool) -> None:
        """Stop answering from the cache (``False``) or resume (``True``).

        Commands that measure speed and cost switch caches off for the run, so
        that answers an earlier run stored do not make a model look free and
        instant, and switch them back on afterwards.
        """
        ...


@runtime_checkable
class ChecksReady(Protocol):
    """A component that needs resources (a model directory) it can only check once the pipeline is built."""

    def distil_check_ready(self) -> None:
        """Raise a :class:`distil.errors.DistilError` naming the missing resource and the fix.

        ``distil.load`` calls it once on every component of a pipeline built
        from a config, so a missing model fails at load time instead of on
        every document. (``spacy.load`` of a saved pipeline restores files
        through ``from_disk`` and does not call it.)
        """
        ...


@runtime_checkable
class Fingerprinted(Protocol):
    """A part whose answers depend on something its config only names (a prompt template's text)."""

    def distil_fingerprint(self) -> Mapping[str, Any]:
        """What, besides the component's config and its model files, determines this part's answers.

        ``distil annotate`` stores it in the job's fingerprint so that resuming
        an annotation directory after the template was edited is an error
        naming the change, not a corpus annotated half one way, half another.
        Values are small and JSON-ready (a file name and a content hash).
        """
        ...


HOOKS: tuple[type[Any], ...] = (DeclaresTask, ReportsUsage, ListsModelFiles, SwitchesCache, ChecksReady, Fingerprinted)
