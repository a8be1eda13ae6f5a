"""Prometheus metrics of a serving process, through prometheus-client.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (so that
several apps in one process, as in tests, do not collide). With
``--workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before spawning
the workers: prometheus-client then keeps every value in a shared file per
process and ``/metrics`` answers for all workers together, whichever worker
the scrape lands on (:func:`render`).

LLM usage comes from the pipeline's own accounting
(:func:`distil.pipeline.usage.collect_usage`, the same figures ``distil run``
prints): after each batch the growth of each component's counters since the
last look is added to the Prometheus counters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Usage figures (as the LLM models report them) turned into counters: figure -> (metric, kind label or None).
TOKEN_FIGURES = {"prompt_tokens": "prompt", "completion_tokens": "completion"}
KNOWN_PATHS = ("/v1/annotate", "/v1/schema", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def multiprocess_mode() -> bool:
    """Whether metrics are shared between worker processes (``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class ServeMetrics:
    """The metrics of one app: requests and documents by outcome, latency, batches, queue depth, LLM usage."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        shared = multiprocess_mode()
        # In multiprocess mode values live in files and render() collects them: registering is not needed.
        registry = None if shared else self.registry
        self.requests = Counter(
            "distil_serve_requests", "HTTP requests by path and status code.", ["path", "status"], registry=registry
        )
        self.latency = Histogram(
            "distil_serve_request_duration_seconds", "Time from request received to response sent.", ["path"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.documents = Counter(
            "distil_serve_documents",
            "Documents by outcome: ok, failed (the pipeline raised), skipped (empty text), rejected (refused before the pipeline), "
            "timeout (past the request's deadline).",
            ["outcome"], registry=registry,
        )
        self.batch_size = Histogram(
            "distil_serve_batch_size", "Documents per nlp.pipe batch.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.batch_duration = Histogram(
            "distil_serve_batch_duration_seconds", "Time the pipeline took per batch.", buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "distil_serve_queue_depth", "Documents waiting for a batch.", registry=registry, multiprocess_mode="livesum"
        )
        self.ready = Gauge(
            "distil_serve_ready", "1 once the pipeline is loaded and warmed up, 0 while draining.",
            registry=registry, multiprocess_mode="livemin",
        )
        self.llm_requests = Counter(
            "distil_serve_llm_requests", "Requests the pipeline's LLM models made.", ["component"], registry=registry
        )
        self.llm_tokens = Counter(
            "distil_serve_llm_tokens", "LLM tokens used, by component and kind (prompt, completion).",
            ["component", "kind"], registry=registry,
        )
        self.llm_cost = Counter(
            "distil_serve_llm_cost", "LLM cost in the models' configured currency units.", ["component"],
            registry=registry,
        )
        self._usage_seen: dict[tuple[str, str], float] = {}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request (unknown paths are pooled as ``other`` to bound the label's values)."""
        label = path if path in KNOWN_PATHS else "other"
        self.requests.labels(label, str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def observe_usage(self, usage: Mapping[str, Mapping[str, Any]]) -> None:
        """Add the growth of the pipeline's usage counters (a :func:`collect_usage` result) since the last call.

        The pipeline's counters are cumulative; a counter that went down was
        reset (``reset_usage``), so its whole new value is growth.
        """
        for component, figures in usage.items():
            for figure in ("requests", "cost", *TOKEN_FIGURES):
                value = figures.get(figure)
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                before = self._usage_seen.get((component, figure), 0.0)
                growth = value - before if value >= before else value
                self._usage_seen[(component, figure)] = float(value)
                if growth <= 0:
                    continue
                if figure == "requests":
                    self.llm_requests.labels(component).inc(growth)
                elif figure == "cost":
                    self.llm_cost.labels(component).inc(growth)
                else:
                    self.llm_tokens.labels(component, TOKEN_FIGURES[figure]).inc(growth)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (all workers' values in multiprocess mode)."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def worker_exited(self) -> None:
        """Tell prometheus-client this worker is gone, so its live gauges (queue depth, ready) stop counting."""
        if multiprocess_mode():
            prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
