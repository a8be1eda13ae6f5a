"""Usage accounting shared by the LLM models and tasks: requests, tokens, latency, cost, failures."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...latency import LatencySketch


@dataclass
class Usage:
    """Counters of one model instance, safe to update from worker threads.

    ``price_per_1k_prompt`` / ``price_per_1k_completion`` turn token counts
    into :attr:`cost` (0 for local models). Request latencies go into a
    :class:`~distil.latency.LatencySketch`, not a list: a long annotation run
    snapshots its usage after every batch, and a list would grow with the run
    and be sorted again each time.
    """

    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    retries: int = 0
    reasks: int = 0
    latency_sketch: LatencySketch = field(default_factory=LatencySketch)
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_completion(self, prompt_tokens: int, completion_tokens: int, latency: float) -> None:
        """Count one answered request."""
        with self._lock:
            self.requests += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.latency_sketch.add(latency)

    def add(self, counter: str, n: int = 1) -> None:
        """Increment ``cache_hits``, ``cache_misses``, ``retries`` or ``reasks``."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def add_failure(self, kind: str) -> None:
        """Count a request that ended in a failure of ``kind``."""
        with self._lock:
            self.failures[kind] += 1

    @property
    def cost(self) -> float:
        """Money spent, from token counts and the configured prices."""
        return (
            self.prompt_tokens * self.price_per_1k_prompt + self.completion_tokens * self.price_per_1k_completion
        ) / 1000.0

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the counters, with latency p50/p95 in seconds.

        ``latency_sketch`` is the latency sketch's :meth:`~distil.latency.LatencySketch.to_dict`,
        so that the latencies of several processes (replicas of a cluster)
        can be merged into one set of percentiles; its size is bounded
        whatever the number of requests.
        """
        with self._lock:
            return {
                "requests": self.requests,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses,
                "retries": self.retries,
                "reasks": self.reasks,
                "failures": dict(self.failures),
                "latency_p50": self.latency_sketch.quantile(50),
                "latency_p95": self.latency_sketch.quantile(95),
                "latency_sketch": self.latency_sketch.to_dict(),
                "cost": self.cost,
            }

    def report(self) -> dict[str, Any]:
        """The figures a run report prints: counters, cost, latency p50/p95 in ms (no latency sketch)."""
        data = self.snapshot()
        data.pop("latency_sketch")
        data["latency_p50_ms"] = round(1000 * data.pop("latency_p50"), 1)
        data["latency_p95_ms"] = round(1000 * data.pop("latency_p95"), 1)
        if not data["failures"]:
            data.pop("failures")
        return data

    def reset(self) -> None:
        """Zero every counter (prices stay)."""
        with self._lock:
            self.requests = self.prompt_tokens = self.completion_tokens = 0
            self.cache_hits = self.cache_misses = self.retries = self.reasks = 0
            self.latency_sketch = LatencySketch()
            self.failures = Counter()


class TracksUsage:
    """Mixin for models: the :class:`distil.protocols.ReportsUsage` hooks over the model's :class:`Usage`."""

    usage: Usage

    def distil_usage(self) -> dict[str, Any]:
        """Requests, cache hits, tokens, cost and latency of this model so far."""
        return self.usage.report()

    def distil_reset_usage(self) -> None:
        """Zero this model's counters (prices stay)."""
        self.usage.reset()
