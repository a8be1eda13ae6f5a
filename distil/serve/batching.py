"""Dynamic batching: documents of concurrent requests grouped into one pipeline call, with a bounded queue.

Request handlers :meth:`Batcher.submit` their texts and await one future per
document. One batcher task takes documents off the queue until it holds
``max_batch_size`` of them or ``max_wait_ms`` has passed since the first, and
hands the batch to ``run_batch`` on a single worker thread, so the event loop
keeps accepting and refusing requests while the pipeline works, and the
pipeline never runs on two threads at once. While a batch runs, new documents
queue up and form the next batch: under load batches grow by themselves. The
wait applies only while recent batches held several documents: a lone client
never pays it.

The queue is bounded in documents: a request whose documents do not all fit
is refused whole (:class:`QueueFull`, answered 503) before anything is queued.
A document whose request gave up (its deadline passed) is dropped when it
reaches the front, without running the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, Optional, TypeVar, Union

from .metrics import ServeMetrics

R = TypeVar("R")

log = logging.getLogger("distil.serve")


class QueueFull(Exception):
    """The queue cannot take a request's documents now; ``retry_after_s`` estimates when it could."""

    def __init__(self, queued: int, limit: int, retry_after_s: int) -> None:
        super().__init__(f"server busy: {queued} document(s) queued (limit {limit}); retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Closed(Exception):
    """The batcher is draining for shutdown and takes no new documents."""


@dataclass
class _Job(Generic[R]):
    text: str
    future: asyncio.Future[R]


@dataclass(frozen=True)
class BatchFailure:
    """The outcome of a document whose whole batch could not run (a bug in ``run_batch`` itself)."""

    reason: str


class Batcher(Generic[R]):
    """Groups submitted texts into batches for ``run_batch`` (one call per batch, on one worker thread).

    ``run_batch`` gets a list of texts and returns one outcome per text, in
    order (a record, or a per-document failure it chooses how to describe).
    """

    def __init__(
        self,
        run_batch: Callable[[list[str]], Sequence[R]],
        executor: ThreadPoolExecutor,
        metrics: ServeMetrics,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self._run_batch = run_batch
        self._executor = executor
        self._metrics = metrics
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self._queue: asyncio.Queue[_Job[Union[R, BatchFailure]]] = asyncio.Queue()
        self._task: Optional[asyncio.Task[None]] = None
        self._closing = False
        # Seconds per document, smoothed: the basis of the Retry-After estimate.
        self._seconds_per_doc = 0.01
        # Documents per batch, smoothed: waiting for batchmates pays only when requests come concurrently.
        self._batch_docs = 1.0

    @property
    def depth(self) -> int:
        """Documents waiting (including those of requests that already gave up)."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """Whether the batcher task is running (``/readyz`` says not ready once it is not)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the batcher task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="distil-batcher")

    def submit(self, texts: Sequence[str]) -> list[asyncio.Future[Union[R, BatchFailure]]]:
        """Queue the texts and return one future per text; all or none are queued.

        Raises :class:`QueueFull` when they do not all fit and :class:`Closed`
        while draining. The check and the puts run without awaiting, so no
        other request can slip in between (the event loop is one thread).
        """
        if self._closing:
            raise Closed("server is shutting down")
        if self.depth + len(texts) > self.max_queue:
            wait = self.depth * self._seconds_per_doc
            raise QueueFull(self.depth, self.max_queue, max(1, math.ceil(wait)))
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Union[R, BatchFailure]]] = []
        for text in texts:
            future: asyncio.Future[Union[R, BatchFailure]] = loop.create_future()
            self._queue.put_nowait(_Job(text, future))
            futures.append(future)
        self._metrics.queue_depth.set(self.depth)
        return futures

    async def drain(self, timeout_s: Optional[float] = None) -> bool:
        """Refuse new documents, finish every queued one, then stop the batcher task.

        With ``timeout_s``, stop waiting after that long (a pipeline call that
        hangs must not keep SIGTERM from ending the process): the documents
        still queued then are failed, and the answer is False.
        """
        self._closing = True
        if self._task is None:
            return True
        drained = True
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except asyncio.TimeoutError:
            drained = False
            log.warning("shutdown: %d document(s) still queued after %.0f s; giving up on them", self.depth, timeout_s)
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_result(BatchFailure("server shutting down"))
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return drained

    async def _next_batch(self) -> list[_Job[Union[R, BatchFailure]]]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        # A lone client (recent batches of one) would only ever wait the full max_wait for nobody: take what
        # is queued and go. Once batches hold several documents, waiting a little fills them further.
        wait = self.max_wait_s if self._batch_docs >= 1.5 else 0.0
        closes_at = loop.time() + wait
        while len(batch) < self.max_batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = closes_at - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            self._metrics.queue_depth.set(self.depth)
            live = [job for job in batch if not job.future.done()]  # requests past their deadline cancelled theirs
            try:
                if live:
                    await self._run(loop, live)
            except Exception as err:  # the batcher must outlive any bug of its own: fail this batch, go on
                log.exception("batcher: a batch of %d document(s) failed outside the pipeline", len(live))
                for job in live:
                    if not job.future.done():
                        job.future.set_result(BatchFailure(f"{type(err).__name__}: {err}"))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job[Union[R, BatchFailure]]]) -> None:
        started = time.perf_counter()
        outcomes: Sequence[Union[R, BatchFailure]]
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run_batch, [job.text for job in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError(f"run_batch returned {len(outcomes)} outcomes for {len(jobs)} texts")
        except Exception as err:  # a failing batch fails its documents, never the batcher
            outcomes = [BatchFailure(f"{type(err).__name__}: {err}")] * len(jobs)
        elapsed = time.perf_counter() - started
        self._seconds_per_doc = 0.8 * self._seconds_per_doc + 0.2 * (elapsed / len(jobs))
        self._batch_docs = 0.8 * self._batch_docs + 0.2 * len(jobs)
        self._metrics.batch_size.observe(len(jobs))
        self._metrics.batch_duration.observe(elapsed)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(outcome)
