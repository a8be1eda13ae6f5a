"""Latency statistics: the one percentile definition of every report (LLM usage, evaluate, compare).

A p95 printed by ``distil run`` for LLM requests and one printed by ``distil
evaluate`` for documents are computed alike: linear interpolation between the
two nearest ranks, numpy's default method, so that a figure read in one report
means the same in another.
"""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
