"""The run report of a pipeline's LLM components: docs, requests, cache hits, tokens, failures, latency, cost.

Call :func:`collect_llm_report` on a pipeline after a run (``distil run``,
``annotate``, ``evaluate``) and print :meth:`LLMRunReport.format`. Counters
accumulate over the pipeline's lifetime; :func:`reset_llm_usage` zeroes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from spacy.language import Language

from .usage import percentile


@dataclass
class ComponentReport:
    """The numbers of one LLM component."""

    component: str
    task: str
    model: str
    docs: int
    chunks: int
    failed_docs: int
    failures: dict[str, int]
    counts: dict[str, int]
    usage: dict[str, Any]


@dataclass
class LLMRunReport:
    """Totals over every distil LLM component of a pipeline, and the per-component numbers."""

    components: list[ComponentReport] = field(default_factory=list)

    def _sum(self, key: str) -> int:
        return sum(int(c.usage[key]) for c in self.components)

    @property
    def docs(self) -> int:
        """Docs seen by the component that saw the most (each component sees every doc)."""
        return max((c.docs for c in self.components), default=0)

    @property
    def requests(self) -> int:
        """Requests that reached a model (retries of one request count once)."""
        return self._sum("requests")

    @property
    def cache_hits(self) -> int:
        """Answers served from the cache."""
        return self._sum("cache_hits")

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens over all requests."""
        return self._sum("prompt_tokens")

    @property
    def completion_tokens(self) -> int:
        """Completion tokens over all requests."""
        return self._sum("completion_tokens")

    @property
    def failures(self) -> dict[str, int]:
        """Failures recorded on docs, by kind."""
        total: Counter[str] = Counter()
        for c in self.components:
            total.update(c.failures)
        return dict(total)

    @property
    def latencies(self) -> list[float]:
        """Latency of every request in seconds."""
        return [x for c in self.components for x in c.usage["latencies"]]

    @property
    def cost(self) -> float:
        """Money spent, from the models' prices per 1k tokens."""
        return sum(float(c.usage["cost"]) for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (without the per-request latencies)."""
        return {
            "docs": self.docs,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "failures": self.failures,
            "latency_p50": percentile(self.latencies, 50),
            "latency_p95": percentile(self.latencies, 95),
            "cost": self.cost,
            "components": [
                {
                    "component": c.component,
                    "task": c.task,
                    "model": c.model,
                    "docs": c.docs,
                    "chunks": c.chunks,
                    "failed_docs": c.failed_docs,
                    "failures": c.failures,
                    "counts": c.counts,
                    **{k: v for k, v in c.usage.items() if k != "latencies"},
                }
                for c in self.components
            ],
        }

    def format(self) -> str:
        """A few human-readable lines for the end of a run."""
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        lines = [
            f"LLM: {self.docs} docs, {self.requests} requests, {self.cache_hits} cache hits, "
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens, cost {self.cost:.4f}",
            f"LLM latency p50 {percentile(self.latencies, 50):.3f} s, p95 {percentile(self.latencies, 95):.3f} s; "
            f"failures: {failures}",
        ]
        for c in self.components:
            extra = ", ".join(f"{k} {v}" for k, v in sorted(c.counts.items()))
            lines.append(
                f"  {c.component} ({c.task}, {c.model}): {c.docs} docs, {c.usage['requests']} requests, "
                f"{c.usage['cache_hits']} cache hits, {c.failed_docs} docs with failures" + (f"; {extra}" if extra else "")
            )
        return "\n".join(lines)


def _llm_parts(pipe: Any) -> Optional[tuple[Any, Any]]:
    task = getattr(pipe, "_task", None)
    model = getattr(pipe, "_model", None)
    if task is None or model is None or not hasattr(task, "stats") or not hasattr(model, "usage"):
        return None
    return task, model


def collect_llm_report(nlp: Language) -> Optional[LLMRunReport]:
    """The report of every distil LLM component in ``nlp``, or ``None`` if it has none."""
    components = []
    for name, pipe in nlp.pipeline:
        parts = _llm_parts(pipe)
        if parts is None:
            continue
        task, model = parts
        stats = task.stats.snapshot()
        components.append(
            ComponentReport(
                component=name,
                task=task.distil_task,
                model=repr(model),
                docs=stats["docs"],
                chunks=stats["chunks"],
                failed_docs=stats["failed_docs"],
                failures=stats["failures"],
                counts=stats["counts"],
                usage=model.usage.snapshot(),
            )
        )
    return LLMRunReport(components) if components else None


def reset_llm_usage(nlp: Language) -> None:
    """Zero the counters of every distil LLM component in ``nlp``."""
    for _, pipe in nlp.pipeline:
        parts = _llm_parts(pipe)
        if parts is not None:
            parts[0].stats.reset()
            parts[1].usage.reset()
