"""``--engine ray``: annotation spread over pipeline replicas on a Ray cluster, stored exactly once.

Why Ray actors and not Ray Data: a replica must load its pipeline once (an
LLM client with its connection pool and concurrency, an ONNX session, a
GGUF model) and then take block after block, which is what an actor is.
Ray Data's ``map_batches`` with an actor pool does the same loading, but
streams its output into a Dataset that the driver would still have to read
back to write the store, adds pyarrow to the extra, and retries failed
blocks by its own rules; with actors, the driver is the only writer and
decides, block by block, what is done, which is where exactly-once lives.

How it runs:

- ``replicas`` actors (:class:`AnnotationReplica`), each with
  ``cpus_per_replica`` CPUs and ``gpus_per_replica`` GPUs reserved, load the
  pipeline from the same config and overrides. An LLM client's
  ``concurrency`` applies per replica: N replicas keep N x concurrency
  requests in flight.
- The driver streams the input in blocks (``--batch-size`` documents),
  keeps ``blocks_per_replica`` blocks in flight on each replica, and appends
  each finished block to the annotation store.
- A replica that dies (its worker killed, its node lost) is restarted by Ray
  (``max_restarts=-1``, reloading the pipeline), and the blocks it had in
  flight are sent again, to the replica with the fewest blocks in flight.
  A block is retried up to ``block_attempts`` times. The driver stores a
  block once, on its first answer, and the store keys records by text, so
  every input ends up in the store once.
- A driver that dies leaves the store as it was after its last block; the
  same command resumes from it (the store's lock dies with the driver).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import DistilError
from ..pipeline.annotate import Block, annotate_block
from ..pipeline.io.texts import TextItem
from ..records import DocRecord, from_record, to_record


class RayEngineError(DistilError, RuntimeError):
    """Ray is missing, the cluster cannot be reached, or a block failed on every attempt."""


@dataclass(frozen=True)
class RaySettings:
    """How ``--engine ray`` runs: replicas, their resources, the cluster, in-flight blocks and retries.

    ``address`` is Ray's: ``None`` starts a local Ray instance for the run (and
    stops it after), ``"auto"`` joins the cluster this machine belongs to,
    ``"ray://host:10001"`` connects a Ray client to a remote head.
    """

    replicas: int = 2
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    address: Optional[str] = None
    blocks_per_replica: int = 2
    block_attempts: int = 4

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise RayEngineError(f"--replicas must be at least 1, got {self.replicas}")
        if self.cpus_per_replica <= 0:
            raise RayEngineError(f"--cpus-per-replica must be above 0 (fractions share a CPU), got {self.cpus_per_replica}")
        if self.gpus_per_replica < 0:
            raise RayEngineError(f"--gpus-per-replica must be 0 or more, got {self.gpus_per_replica}")
        if self.blocks_per_replica < 1 or self.block_attempts < 1:
            raise RayEngineError("blocks_per_replica and block_attempts must be at least 1")


class AnnotationReplica:
    """One pipeline replica (a Ray actor; its worker process is titled ``ray::AnnotationReplica``)."""

    def __init__(self, config: str, overrides: Mapping[str, Any], workdir: str, code: Optional[str]) -> None:
        # Relative paths of the config (model directories, example files) mean what they meant to the driver.
        if os.path.isdir(workdir):
            os.chdir(workdir)
        if code:
            from spacy.cli._util import import_code

            import_code(code)
        from ..pipeline.config import load_pipeline

        self.nlp = load_pipeline(config, dict(overrides))

    def annotate(self, payload: list[tuple[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The records of one block (as JSON-ready dicts) and this replica's usage figures so far."""
        from ..pipeline.usage import collect_usage

        block = [(key, _item_from_payload(data, self.nlp)) for key, data in payload]
        records = annotate_block(self.nlp, block)
        return [r.model_dump(mode="json") for r in records], collect_usage(self.nlp)

    def pid(self) -> int:
        """The worker's process id (for operators, and for the tests that kill it)."""
        return os.getpid()


def _payload(item: TextItem) -> dict[str, Any]:
    """What crosses to a replica for one input: plain data (a given Doc travels as its record)."""
    given = to_record(item.doc).model_dump(mode="json") if item.doc is not None else None
    return {"text": item.text, "source": item.source, "line": item.line, "meta": item.meta, "given": given}


def _item_from_payload(data: dict[str, Any], nlp: Any) -> TextItem:
    doc = from_record(data["given"], nlp) if data.get("given") else None
    return TextItem(text=data["text"], source=data["source"], line=data["line"], meta=data["meta"], doc=doc)


def merge_usage(per_replica: list[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """One usage report from the replicas': counters summed per component; latency figures are the worst replica's.

    Percentiles cannot be added, and the replicas' latency distributions are
    alike by construction (same pipeline, same endpoint), so the report keeps
    the highest p50/p95 of any replica: an upper bound, labelled as such in
    docs/scale.md.
    """
    out: dict[str, dict[str, Any]] = {}
    for usage in per_replica:
        for component, figures in usage.items():
            merged = out.setdefault(component, {})
            for key, value in figures.items():
                if isinstance(value, bool) or value is None:
                    merged.setdefault(key, value)
                elif isinstance(value, (int, float)):
                    merged[key] = max(merged.get(key, 0), value) if "latency" in key else merged.get(key, 0) + value
                elif isinstance(value, dict):
                    counts = merged.setdefault(key, {})
                    for k, v in value.items():
                        if isinstance(v, (int, float)) and not isinstance(v, bool):
                            counts[k] = counts.get(k, 0) + v
                else:
                    merged.setdefault(key, value)
    return out


class RayEngine:
    """The Ray engine (see the module docstring); use as a context manager around :func:`annotate`."""

    name = "ray"

    def __init__(
        self, config: Path, overrides: Mapping[str, Any], settings: RaySettings, *, code: Optional[Path] = None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise RayEngineError(
                "--engine ray needs Ray: pip install 'distil[ray]' (the local engine needs nothing more)"
            ) from None
        self._ray = ray
        self.settings = settings
        self.config = str(Path(config).resolve()) if Path(config).exists() else str(config)
        self.overrides = dict(overrides)
        self.code = str(Path(code).resolve()) if code else None
        self._retried = 0
        self._usage: dict[int, dict[str, Any]] = {}
        self._started_ray = False
        self._replicas: list[Any] = []

    def __enter__(self) -> RayEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect to (or start) Ray and create the replicas; fails early if they cannot load the pipeline."""
        ray = self._ray
        s = self.settings
        if not ray.is_initialized():
            options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if s.address is None:
                # A local instance for this run: enough logical CPUs for the replicas asked for (fractions
                # share a core: an LLM replica waits on the network, not on a CPU).
                options.update(num_cpus=max(os.cpu_count() or 1, math.ceil(s.replicas * s.cpus_per_replica)),
                               include_dashboard=False)
                self._started_ray = True
            try:
                ray.init(address=s.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as err:
                hint = ""
                if "auth" in str(err).lower() or os.environ.get("RAY_AUTH_MODE") != "token":
                    hint = (" (a cluster with token authentication, Ray's default since 2.52, needs RAY_AUTH_MODE=token "
                            "here and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token; see docs/scale.md)")
                raise RayEngineError(f"cannot connect to Ray at {s.address!r}: {err}{hint}") from None
        remote = ray.remote(
            num_cpus=s.cpus_per_replica, num_gpus=s.gpus_per_replica, max_restarts=-1, max_task_retries=0,
        )(AnnotationReplica)
        self._replicas = [remote.remote(self.config, self.overrides, os.getcwd(), self.code) for _ in range(s.replicas)]
        try:
            # Wait for every replica to load its pipeline: a bad config fails here, once, with its message.
            ray.get([replica.pid.remote() for replica in self._replicas])
        except ray.exceptions.RayActorError as err:
            self.close()
            raise RayEngineError(f"a replica could not load the pipeline {self.config}: {err}") from None

    def run(self, blocks: Iterator[Block]) -> Iterator[tuple[Block, list[DocRecord]]]:
        """Annotate blocks on the replicas, a bounded number in flight; yield each block once, when done.

        A replica that fails a call is taken out of rotation and probed until
        Ray has restarted it; its blocks go to the others meanwhile (or wait
        for it, if it was the only one). Every call lost with its replica
        counts one attempt of its block.
        """
        ray = self._ray
        unavailable = ray.exceptions.ActorUnavailableError
        lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
                ray.exceptions.NodeDiedError, ray.exceptions.OwnerDiedError)
        n = len(self._replicas)
        in_flight: dict[Any, tuple[Block, int, int]] = {}
        probes: dict[Any, int] = {}
        down: set[int] = set()
        load = [0] * n
        waiting: deque[tuple[Block, int]] = deque()  # blocks to send again, before new ones
        source = iter(blocks)
        exhausted = False

        def take_down(index: int) -> None:
            if index not in down:
                down.add(index)
                probes[self._replicas[index].pid.remote()] = index

        def dispatch() -> None:
            nonlocal exhausted
            while True:
                up = [i for i in range(n) if i not in down]
                if not up or len(in_flight) >= len(up) * self.settings.blocks_per_replica:
                    return
                if waiting:
                    block, attempt = waiting.popleft()
                elif exhausted:
                    return
                else:
                    next_block = next(source, None)
                    if next_block is None:
                        exhausted = True
                        return
                    block, attempt = next_block, 1
                index = min(up, key=load.__getitem__)
                payload = [(key, _payload(item)) for key, item in block]
                in_flight[self._replicas[index].annotate.remote(payload)] = (block, index, attempt)
                load[index] += 1

        dispatch()
        while in_flight or waiting or probes:
            ready = ray.wait([*in_flight, *probes], num_returns=1)[0][0]
            if ready in probes:
                index = probes.pop(ready)
                try:
                    ray.get(ready)
                    down.discard(index)
                except (unavailable, *lost):
                    time.sleep(0.5)  # still restarting (reloading its pipeline): ask again shortly
                    probes[self._replicas[index].pid.remote()] = index
                dispatch()
                continue
            block, index, attempt = in_flight.pop(ready)
            load[index] -= 1
            try:
                records, usage = ray.get(ready)
            except (unavailable, *lost) as err:
                # Ray cannot say whether the call ran before its worker died: the block is done again, and
                # stored once (the driver stores only answers it received, keyed by text).
                if attempt >= self.settings.block_attempts:
                    raise RayEngineError(
                        f"a block of {len(block)} document(s) was lost {attempt} times (last: {type(err).__name__}); "
                        "the blocks stored before it are kept, rerun to resume"
                    ) from None
                self._retried += 1
                waiting.appendleft((block, attempt + 1))
                take_down(index)
                dispatch()
                continue
            self._usage[index] = usage
            dispatch()
            yield block, [DocRecord.model_validate(record) for record in records]

    @property
    def retried_blocks(self) -> int:
        """Blocks sent again because the replica annotating them was lost."""
        return self._retried

    def usage(self) -> dict[str, Any]:
        """The replicas' usage merged (:func:`merge_usage`), from their latest answers."""
        return merge_usage(list(self._usage.values()))

    def close(self) -> None:
        """Stop the replicas, and the local Ray instance if this engine started it."""
        for replica in self._replicas:
            try:
                self._ray.kill(replica)
            except Exception:  # already gone with its cluster
                pass
        self._replicas = []
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_ray = False
