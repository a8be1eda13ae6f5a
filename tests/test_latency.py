"""The latency sketch: percentiles within its relative accuracy, exact merges, bounded memory, JSON round trip."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from distil.components.llm.usage import Usage
from distil.latency import LatencySketch, percentile

QUANTILES = [0, 1, 5, 25, 50, 75, 90, 95, 99, 99.9, 100]


def sketch_of(values: list[float], **kwargs: float) -> LatencySketch:
    sketch = LatencySketch(**kwargs)  # type: ignore[arg-type]
    for value in values:
        sketch.add(value)
    return sketch


def test_quantiles_of_lognormal_latencies_are_within_one_percent() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=-1.0, sigma=1.5, size=10_000).tolist()
    sketch = sketch_of(values, relative_accuracy=0.01)
    assert sketch.count == 10_000
    for q in QUANTILES:
        exact = percentile(values, q)
        assert exact == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
        assert sketch.quantile(q) == pytest.approx(exact, rel=0.01 + 1e-9), f"p{q}"
    assert sketch.quantile(0) == min(values) and sketch.quantile(100) == max(values)


@pytest.mark.parametrize("values", [[0.2], [0.2, 0.2], [0.1, 0.3], [1.0, 2.0, 3.0, 4.0, 100.0]])
def test_small_samples_follow_percentile(values: list[float]) -> None:
    sketch = sketch_of(values)
    for q in QUANTILES:
        assert sketch.quantile(q) == pytest.approx(percentile(values, q), rel=0.01)


def test_empty_zero_and_tiny_values() -> None:
    assert LatencySketch().quantile(95) == 0.0 == percentile([], 95)
    zeros = sketch_of([0.0] * 10)
    assert zeros.quantile(50) == 0.0 and zeros.bucket_count == 1
    # Below min_value everything shares one bucket: within min_value of the truth, no bucket per decade.
    tiny = sketch_of([1e-15, 1e-13, 1e-11, 0.0, 0.5])
    assert tiny.bucket_count == 2
    assert abs(tiny.quantile(50) - 1e-13) < 1e-9 and tiny.quantile(100) == 0.5
    for bad in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            LatencySketch().add(bad)
    with pytest.raises(ValueError):
        LatencySketch().quantile(101)


def test_merge_equals_the_sketch_of_the_union() -> None:
    rng = random.Random(1)
    left = [rng.lognormvariate(0.0, 2.0) for _ in range(3000)] + [0.0]
    right = [rng.expovariate(3.0) for _ in range(2000)]
    merged = sketch_of(left)
    merged.merge(sketch_of(right))
    union = sketch_of(right + left)
    assert merged == union and merged.to_dict() == union.to_dict()
    assert merged.count == 5001
    for q in QUANTILES:
        assert merged.quantile(q) == pytest.approx(percentile(left + right, q), rel=0.01 + 1e-9)
    with pytest.raises(ValueError, match="relative_accuracy"):
        merged.merge(LatencySketch(relative_accuracy=0.02))


def test_merge_stays_exact_when_buckets_are_folded() -> None:
    rng = random.Random(2)
    values = [10 ** rng.uniform(-6, 6) for _ in range(5000)]
    merged = sketch_of(values[:2500], max_buckets=50)
    merged.merge(sketch_of(values[2500:], max_buckets=50))
    union = sketch_of(values, max_buckets=50)
    assert merged == union and union.bucket_count == 50
    # Folding gives up the fastest requests, not the slow tail a p95 reports.
    assert union.quantile(99) == pytest.approx(percentile(values, 99), rel=0.01 + 1e-9)


def test_bucket_count_is_bounded_after_a_million_adds() -> None:
    rng = np.random.default_rng(3)
    sketch = LatencySketch()
    for value in (10 ** rng.uniform(-4, 3, size=1_000_000)).tolist():
        sketch.add(value)
    assert sketch.count == 1_000_000
    assert sketch.bucket_count < 2000
    assert len(json.dumps(sketch.to_dict())) < 40_000


def test_to_dict_from_dict_round_trip() -> None:
    rng = random.Random(4)
    sketch = sketch_of([rng.lognormvariate(-2.0, 1.0) for _ in range(1000)] + [0.0, 1e-12])
    data = json.loads(json.dumps(sketch.to_dict()))
    again = LatencySketch.from_dict(data)
    assert again == sketch and again.to_dict() == sketch.to_dict()
    assert [again.quantile(q) for q in QUANTILES] == [sketch.quantile(q) for q in QUANTILES]
    empty = LatencySketch.from_dict(json.loads(json.dumps(LatencySketch().to_dict())))
    assert empty == LatencySketch() and empty.quantile(50) == 0.0
    data["count"] += 1
    with pytest.raises(ValueError, match="add up"):
        LatencySketch.from_dict(data)


def test_usage_memory_does_not_grow_with_the_requests() -> None:
    usage = Usage()
    rng = random.Random(5)
    latencies = [rng.lognormvariate(-0.5, 1.0) for _ in range(100_000)]
    for latency in latencies:
        usage.add_completion(10, 5, latency)
    assert usage.requests == 100_000 and usage.latency_sketch.count == 100_000
    assert usage.latency_sketch.bucket_count < 2000
    snapshot = usage.snapshot()
    assert not any(isinstance(value, list) and len(value) > 2000 for value in snapshot.values())
    assert "latencies" not in snapshot
    assert snapshot["latency_p95"] == pytest.approx(percentile(latencies, 95), rel=0.01 + 1e-9)
    assert LatencySketch.from_dict(snapshot["latency_sketch"]) == usage.latency_sketch
    report = usage.report()
    assert "latency_sketch" not in report and report["latency_p50_ms"] > 0
    usage.reset()
    assert usage.latency_sketch.count == 0 and usage.snapshot()["latency_p50"] == 0.0
