"""Annotate a corpus into an annotation store, resumably and exactly once, on any engine.

The driver (:func:`annotate`) reads the input, skips what the store already
holds, hands blocks of documents to an engine and appends each finished block
to the store (:mod:`distil.pipeline.store`): killed at any moment, a rerun
finishes the job with every distinct input text in the store once. The
engine decides where documents are annotated: :class:`LocalEngine` runs the
pipeline in this process (the default); ``distil.engines.ray.RayEngine``
spreads blocks over pipeline replicas on a Ray cluster. Only the driver
writes, so exactly-once does not depend on the engine: a block an engine
loses (a replica killed) is redone by the engine, a block it returns twice
is stored once (the store keys records by their text).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Optional, Protocol

from spacy.language import Language
from spacy.tokens import Doc

from ..annotations import SYSTEMIC_FAILURE_KINDS, Failure, record_failure
from ..corpus import text_key
from ..records import META_KEY, DocRecord, to_record
from .batch import DocError, process
from .io.texts import InputItem, Skip, TextItem
from .store import AnnotationStore, StoreError
from .usage import collect_usage

# The item of a block: the key of the text (its identity in the store) and the input item.
Block = list[tuple[str, TextItem]]
__all__ = ["ABORT_AFTER", "AnnotateReport", "AnnotationAborted", "Block", "Engine", "LocalEngine", "annotate",
           "annotate_block", "read_records", "text_key"]
# Consecutive documents failing with a systemic error (a wrong key, a wrong model name) that stop a run.
ABORT_AFTER = 5


class AnnotationAborted(StoreError):
    """The run stopped on a systemic error; the documents finished before it are in the store."""


class Engine(Protocol):
    """Where the documents of a run are annotated: blocks in, records out (in any order)."""

    name: str
    """What ``report.json`` calls it: ``local``, ``ray``."""

    def run(self, blocks: Iterator[Block]) -> Iterator[tuple[Block, list[DocRecord]]]:
        """Annotate every block ``blocks`` yields and yield it back with its records, one per item.

        An engine pulls blocks lazily (only a bounded number in flight), so a
        corpus of any size streams through, and may yield them in another
        order than it took them.
        """
        ...

    def usage(self) -> dict[str, Any]:
        """The usage figures of the pipeline(s), per component (as :func:`collect_usage` returns them)."""
        ...

    @property
    def retried_blocks(self) -> int:
        """Blocks sent again because the worker annotating them was lost (0 for the local engine)."""
        ...


def annotate_block(nlp: Language, block: Block) -> list[DocRecord]:
    """The records of one block: each input run through ``nlp`` (or a recorded failure), its key in meta.

    This is the whole of the per-document work, shared by every engine: a
    document the pipeline cannot process becomes a record with a
    ``pipeline_error`` failure, so a bad document never costs its block.
    """
    records = []
    for (key, item), result in process(nlp, block, lambda pair: pair[1].pipeline_input(), batch_size=len(block) or 1):
        doc = result if isinstance(result, Doc) else _failed_doc(nlp, item.text, result)
        doc.user_data[META_KEY] = {**item.meta, "key": key, "source": item.source, "line": item.line}
        records.append(to_record(doc))
    return records


class LocalEngine:
    """The default engine: the pipeline in this process, one block at a time."""

    name = "local"

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp

    def run(self, blocks: Iterator[Block]) -> Iterator[tuple[Block, list[DocRecord]]]:
        """Annotate each block in turn with :func:`annotate_block`."""
        for block in blocks:
            yield block, annotate_block(self.nlp, block)

    def usage(self) -> dict[str, Any]:
        """The usage figures of the in-process pipeline."""
        return collect_usage(self.nlp)

    @property
    def retried_blocks(self) -> int:
        """Always 0: a block that fails here fails document by document, as recorded failures."""
        return 0


@dataclass
class AnnotateReport:
    """What an annotation run did; ``resumed`` counts documents found done from an earlier run."""

    written: int = 0
    resumed: int = 0
    retried: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skip_examples: dict[str, str] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    words: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    job: str = ""
    engine: str = "local"
    stored: int = 0
    retried_blocks: int = 0

    @property
    def docs_per_second(self) -> float:
        """Documents annotated in this run per second of wall time."""
        return self.written / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, as written to ``report.json``."""
        return {
            "state": self.state,
            "job": self.job,
            "engine": self.engine,
            "retried_blocks": self.retried_blocks,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "stored": self.stored,
            "written": self.written,
            "resumed": self.resumed,
            "retried": self.retried,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
            "skip_examples": self.skip_examples,
            "failures": dict(self.failures),
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.docs_per_second, 3),
            "words": self.words,
            "usage": self.usage,
        }


def _systemic(record: DocRecord) -> Optional[str]:
    """The reason of a systemic failure of ``record`` (wrong key, wrong model), or None."""
    for failure in record.meta.get("failures", []):
        if failure.get("kind") in SYSTEMIC_FAILURE_KINDS:
            return str(failure.get("reason", failure.get("kind")))
    return None


def annotate(
    nlp: Optional[Language],
    items: Iterable[InputItem],
    output: Path,
    *,
    batch_size: int = 32,
    on_batch: Optional[Callable[[AnnotateReport], None]] = None,
    usage: Optional[Callable[[], dict[str, Any]]] = None,
    limit: Optional[int] = None,
    engine: Optional[Engine] = None,
    start_engine: Optional[Callable[[], AbstractContextManager[Engine]]] = None,
    fingerprint: Optional[Mapping[str, Any]] = None,
    new_job: bool = False,
    retry_failed: bool = False,
    abort_after: int = ABORT_AFTER,
) -> AnnotateReport:
    """Annotate ``items`` into the store at ``output``, resuming a previous run of the same job there.

    ``engine`` runs the pipeline (default: :class:`LocalEngine` over ``nlp``);
    ``start_engine`` instead starts one once the store is open and checked, so
    a locked directory or a changed job fails before a cluster is started.
    ``fingerprint`` (:func:`distil.pipeline.fingerprint.pipeline_fingerprint`)
    is checked against the store's job; a different one is an error unless
    ``new_job``. ``retry_failed`` annotates again the documents whose stored
    record has a failure, replacing it. ``limit`` stops after that many usable
    input documents (the first N of the corpus, counting those already done),
    so a rerun with the same limit resumes the same set. ``abort_after``
    consecutive documents with a systemic failure (HTTP 401/403/404) stop the
    run with :class:`AnnotationAborted`; those documents are not stored, so the
    rerun after the fix does them. ``on_batch`` is called after every block
    (progress display); ``usage`` overrides where the report's usage figures
    come from.
    """
    if engine is None and start_engine is None:
        if nlp is None:
            raise ValueError("annotate() needs a pipeline or an engine")
        engine = LocalEngine(nlp)
    with ExitStack() as stack:
        store = stack.enter_context(AnnotationStore.open(output, fingerprint=fingerprint, new_job=new_job))
        if engine is None:
            assert start_engine is not None
            engine = stack.enter_context(start_engine())
        return _run(engine, store, items, output, batch_size=batch_size, on_batch=on_batch, usage=usage,
                    limit=limit, retry_failed=retry_failed, abort_after=abort_after)


def _run(
    engine: Engine, store: AnnotationStore, items: Iterable[InputItem], output: Path, *, batch_size: int,
    on_batch: Optional[Callable[[AnnotateReport], None]], usage: Optional[Callable[[], dict[str, Any]]],
    limit: Optional[int], retry_failed: bool, abort_after: int,
) -> AnnotateReport:
    """The driver loop of :func:`annotate` over an open store and a started engine."""
    usage_of = usage or engine.usage
    report = AnnotateReport(engine=engine.name)
    started = time.perf_counter()
    report.job = store.job_id
    redo = store.failed_keys if retry_failed else set()

    def todo() -> Iterator[tuple[str, TextItem]]:
        seen_now: set[str] = set()
        used = 0
        for item in items:
            if limit is not None and used >= limit:
                return
            if isinstance(item, Skip):
                reason = item.reason.split(" at byte")[0].split(" at column")[0]
                report.skipped[reason] += 1
                report.skip_examples.setdefault(reason, str(item))
                continue
            used += 1
            key = text_key(item.text)
            if key in seen_now:
                report.duplicates += 1
                continue
            seen_now.add(key)
            if key in redo:
                report.retried += 1
                yield key, item
            elif key in store.done:
                report.resumed += 1
            else:
                yield key, item

    def blocks() -> Iterator[Block]:
        pending = todo()
        while block := list(islice(pending, batch_size)):
            yield block

    def publish() -> None:
        report.seconds = time.perf_counter() - started
        report.usage = usage_of()
        report.stored = len(store.done)
        report.retried_blocks = engine.retried_blocks
        store.write_report(report.to_dict())
        if on_batch is not None:
            on_batch(report)

    # Records of the current run of systemic failures, held back: stored if a success ends the run of
    # failures (they were isolated), dropped if it reaches abort_after (the rerun after the fix does them).
    held: list[DocRecord] = []

    def store_records(records: list[DocRecord]) -> None:
        store.append(records)
        report.written += len(records)
        report.words += sum(len(r.text.split()) for r in records)
        for record in records:
            report.failures.update(f["kind"] for f in record.meta.get("failures", []))

    try:
        for _, records in engine.run(blocks()):
            keep: list[DocRecord] = []
            for record in records:
                if _systemic(record) is None:
                    keep += held
                    held.clear()
                    keep.append(record)
                else:
                    held.append(record)
                    if len(held) >= abort_after:
                        break
            store_records(keep)
            publish()
            if len(held) >= abort_after:
                report.state = "aborted"
                raise AnnotationAborted(
                    f"stopped after {len(held)} documents in a row failed with a systemic error: "
                    f"{_systemic(held[-1])}. Fix the configuration (the API key's environment variable, the "
                    f"model name, the base URL) and rerun: the {len(store.done)} document(s) stored in "
                    f"{output} are kept and not redone"
                )
        store_records(held)
        report.state = "finished"
    except BaseException:
        if report.state == "running":
            report.state = "interrupted"
        raise
    finally:
        store.compact()
        publish()
    return report


def _failed_doc(nlp: Language, text: str, error: DocError[Any]) -> Doc:
    """A doc for an input the pipeline could not process: no annotations, the failure recorded."""
    # Past max_length the tokenizer refuses the text: keep it whole as one token, so the
    # document is not lost, only unannotated.
    doc = nlp.make_doc(text) if len(text) <= nlp.max_length else Doc(nlp.vocab, words=[text], spaces=[False])
    record_failure(doc, Failure("pipeline", "any", "pipeline_error", error.reason))
    return doc


def read_records(output: Path) -> list[DocRecord]:
    """The records of an annotation directory (one per input text)."""
    store = AnnotationStore(output)
    return list(store.records())
