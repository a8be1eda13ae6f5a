"""The batcher of `distil serve` on its own: a hung batch cannot stop shutdown, and a bug of its own fails
only the batch it hit (no server needed: the batcher is plain asyncio around one worker thread)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distil.serve.batching import Batcher, BatchFailure
from distil.serve.metrics import ServeMetrics


def test_drain_gives_up_on_a_hung_batch_after_its_timeout() -> None:
    release = threading.Event()

    def hang(texts: list[str]) -> list[str]:
        release.wait(10)
        return texts

    async def scenario() -> tuple[bool, object, object, float]:
        executor = ThreadPoolExecutor(1)
        batcher: Batcher[str] = Batcher(hang, executor, ServeMetrics(), max_batch_size=1, max_wait_ms=0, max_queue=8)
        batcher.start()
        _running, queued = batcher.submit(["a", "b"])
        await asyncio.sleep(0.1)  # "a" is in the pipeline, "b" waits behind it
        started = asyncio.get_running_loop().time()
        drained = await batcher.drain(timeout_s=0.3)
        took = asyncio.get_running_loop().time() - started
        release.set()
        executor.shutdown(wait=True)
        return drained, queued.result(), batcher.alive, took

    drained, queued, alive, took = asyncio.run(scenario())
    assert drained is False
    assert took < 2
    assert queued == BatchFailure("server shutting down")
    assert alive is False


def test_a_bug_outside_the_pipeline_fails_its_batch_and_the_batcher_goes_on() -> None:
    metrics = ServeMetrics()
    calls = {"n": 0}
    observe = metrics.batch_size.observe

    def flaky_observe(value: float, exemplar: Any = None) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("metrics broke")
        observe(value)

    metrics.batch_size.observe = flaky_observe  # type: ignore[method-assign,assignment]

    async def scenario() -> tuple[object, object, bool]:
        executor = ThreadPoolExecutor(1)
        batcher: Batcher[str] = Batcher(
            lambda texts: [t.upper() for t in texts], executor, metrics, max_batch_size=1, max_wait_ms=0, max_queue=8
        )
        batcher.start()
        (first,) = batcher.submit(["a"])
        failed = await first
        (second,) = batcher.submit(["b"])
        ok = await second
        alive = batcher.alive
        await batcher.drain(timeout_s=1)
        executor.shutdown(wait=True)
        return failed, ok, alive

    failed, ok, alive = asyncio.run(scenario())
    assert isinstance(failed, BatchFailure) and "metrics broke" in failed.reason
    assert ok == "B"
    assert alive is True
