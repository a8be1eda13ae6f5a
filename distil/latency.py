"""Latency statistics: the one percentile definition of every report (LLM usage, evaluate, compare).

A p95 printed by ``distil run`` for LLM requests and one printed by ``distil
evaluate`` for documents are computed alike: linear interpolation between the
two nearest ranks, numpy's default method, so that a figure read in one report
means the same in another.

``evaluate`` times a few documents and keeps their exact list
(:func:`percentile`). An LLM model answers every request of a long annotation
run, possibly in several processes, so it keeps a :class:`LatencySketch`
instead: a fixed-size summary whose percentiles match :func:`percentile`
within a stated relative accuracy, and which merges across replicas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


class LatencySketch:
    """A streaming, mergeable summary of non-negative durations (seconds) with bounded memory.

    A log-bucketed histogram (as DDSketch): bucket ``i`` counts the values in
    ``(gamma**(i-1), gamma**i]`` with ``gamma = (1 + a) / (1 - a)``, and stands
    for the value ``2 * gamma**i / (gamma + 1)``, which is within a relative
    ``a`` (``relative_accuracy``) of anything in the bucket. Values below
    ``min_value`` (zero included) share one bucket standing for 0, so a
    duration too short to measure costs no bucket per order of magnitude.
    Memory is the number of distinct buckets, about ``ln(max/min) / (2a)``
    (about 800 for 0.1 ms to 1000 s at 1 %), whatever the count; past
    ``max_buckets`` the lowest buckets are folded together, which gives up
    accuracy on the fastest requests and keeps it on the slow tail a p95
    reports. Not thread-safe: the owner (:class:`distil.components.llm.usage.Usage`)
    holds its lock around it.
    """

    def __init__(self, relative_accuracy: float = 0.01, min_value: float = 1e-9, max_buckets: int = 2048) -> None:
        """An empty sketch; two sketches merge only if they share ``relative_accuracy`` and ``min_value``.

        The defaults suit request latencies: 1 % is finer than the run-to-run
        noise of a server, a nanosecond is below ``time.perf_counter``'s
        resolution, and 2048 buckets cover 0.1 ns to ten centuries at 1 %, so
        folding never happens in practice and only bounds memory in theory.
        """
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative_accuracy must be between 0 and 1 (exclusive), got {relative_accuracy}")
        if not (min_value > 0.0 and math.isfinite(min_value)):
            raise ValueError(f"min_value must be a positive number, got {min_value}")
        if max_buckets < 2:
            raise ValueError(f"max_buckets must be at least 2, got {max_buckets}")
        self.relative_accuracy = float(relative_accuracy)
        self.min_value = float(min_value)
        self.max_buckets = int(max_buckets)
        self._gamma = (1.0 + self.relative_accuracy) / (1.0 - self.relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._zero_count = 0
        self._count = 0
        self._min = math.inf
        self._max = -math.inf

    # --- building --------------------------------------------------------------

    def add(self, value: float) -> None:
        """Count one duration in seconds; a negative, infinite or NaN value raises ``ValueError``.

        Durations come from ``time.perf_counter`` differences, which are never
        negative; anything else is a caller's bug that would silently distort
        every later percentile, so it is refused rather than clamped.
        """
        value = float(value)
        if not (value >= 0.0 and math.isfinite(value)):
            raise ValueError(f"a latency must be a finite number of seconds >= 0, got {value}")
        self._count += 1
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        if value < self.min_value:
            self._zero_count += 1
            return
        index = self._index(value)
        if self._buckets and len(self._buckets) >= self.max_buckets:
            lowest = min(self._buckets)
            if index < lowest:  # folded range: counted in the lowest bucket kept
                index = lowest
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self._fold()

    def merge(self, other: LatencySketch) -> None:
        """Add the counts of ``other`` (another process's or replica's sketch) into this one.

        Buckets depend only on the value and the accuracy, so merging the
        sketches of two sets of durations gives exactly the sketch of their
        union, in any order; sketches built with a different accuracy or
        ``min_value`` have other bucket bounds and raise ``ValueError``.
        """
        if (other.relative_accuracy, other.min_value) != (self.relative_accuracy, self.min_value):
            raise ValueError(
                f"cannot merge a latency sketch of relative_accuracy {other.relative_accuracy}, "
                f"min_value {other.min_value} into one of {self.relative_accuracy}, {self.min_value}"
            )
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n
        self._zero_count += other._zero_count
        self._count += other._count
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self.max_buckets = min(self.max_buckets, other.max_buckets)
        self._fold()

    # --- reading ---------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many durations were added (merged sketches included)."""
        return self._count

    @property
    def bucket_count(self) -> int:
        """How many buckets are held: the sketch's memory, bounded by ``max_buckets`` whatever :attr:`count` is."""
        return len(self._buckets) + (1 if self._zero_count else 0)

    def quantile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), defined as :func:`percentile`'s; 0.0 for an empty sketch.

        The two order statistics around ``(count - 1) * q / 100`` are each
        estimated within ``relative_accuracy`` and interpolated linearly as
        :func:`percentile` does, so the result is within ``relative_accuracy``
        of what :func:`percentile` gives on the exact list (values below
        ``min_value`` are within ``min_value`` instead). Estimates are clamped
        to the exact minimum and maximum, so p0 and p100 are exact.
        """
        if not 0.0 <= q <= 100.0:
            raise ValueError(f"a percentile must be between 0 and 100, got {q}")
        if not self._count:
            return 0.0
        pos = (self._count - 1) * q / 100.0
        low = int(pos)
        high = min(low + 1, self._count - 1)
        low_value, high_value = self._ranked(low, high)
        return low_value + (high_value - low_value) * (pos - low)

    # --- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (a few kB at most), for snapshots and for shipping to another process.

        Buckets are ``[index, count]`` pairs in increasing order, so that the
        same durations always give the same JSON; :meth:`from_dict` reads it
        back into an equal sketch.
        """
        return {
            "relative_accuracy": self.relative_accuracy,
            "min_value": self.min_value,
            "max_buckets": self.max_buckets,
            "count": self._count,
            "zero_count": self._zero_count,
            "min": self._min if self._count else None,
            "max": self._max if self._count else None,
            "buckets": [[index, self._buckets[index]] for index in sorted(self._buckets)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencySketch:
        """The sketch :meth:`to_dict` wrote; an inconsistent dict raises ``ValueError``.

        The counts are checked against each other because a sketch read from
        another process's report is then merged, and a corrupt one would
        otherwise skew every percentile computed after it.
        """
        sketch = cls(float(data["relative_accuracy"]), float(data["min_value"]), int(data["max_buckets"]))
        buckets = {int(index): int(n) for index, n in data.get("buckets") or []}
        zero_count = int(data.get("zero_count") or 0)
        count = int(data["count"])
        if any(n <= 0 for n in buckets.values()) or zero_count < 0 or count != zero_count + sum(buckets.values()):
            raise ValueError("latency sketch: bucket counts do not add up to its count")
        if len(buckets) > sketch.max_buckets:
            raise ValueError(f"latency sketch: {len(buckets)} buckets, more than max_buckets {sketch.max_buckets}")
        sketch._buckets = buckets
        sketch._zero_count = zero_count
        sketch._count = count
        if count:
            if data.get("min") is None or data.get("max") is None:
                raise ValueError("latency sketch: a non-empty sketch needs its min and max")
            sketch._min = float(data["min"])
            sketch._max = float(data["max"])
        return sketch

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencySketch):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"LatencySketch(count={self._count}, buckets={self.bucket_count}, "
            f"relative_accuracy={self.relative_accuracy})"
        )

    # --- internals -------------------------------------------------------------

    def _index(self, value: float) -> int:
        return math.ceil(math.log(value) / self._log_gamma)

    def _value(self, index: int) -> float:
        return 2.0 * math.exp(index * self._log_gamma) / (self._gamma + 1.0)

    def _fold(self) -> None:
        """Fold the lowest buckets into the lowest one kept until at most ``max_buckets`` remain.

        The result depends only on the set of indices, not on the order the
        values came in, so merging stays exact even after folding.
        """
        excess = len(self._buckets) - self.max_buckets
        if excess <= 0:
            return
        ordered = sorted(self._buckets)
        target = ordered[excess]
        self._buckets[target] += sum(self._buckets.pop(index) for index in ordered[:excess])

    def _ranked(self, *ranks: int) -> tuple[float, ...]:
        """Estimates of the order statistics at the given 0-based ``ranks`` (in increasing order)."""
        out: list[float] = []
        wanted = iter(ranks)
        rank = next(wanted, None)
        seen = self._zero_count
        while rank is not None and rank < seen:
            out.append(0.0)
            rank = next(wanted, None)
        for index in sorted(self._buckets):
            if rank is None:
                break
            seen += self._buckets[index]
            while rank is not None and rank < seen:
                out.append(self._value(index))
                rank = next(wanted, None)
        return tuple(min(max(value, self._min), self._max) for value in out)
