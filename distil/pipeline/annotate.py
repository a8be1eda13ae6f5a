"""Annotate a corpus with a pipeline, resumably: killed at any moment, a rerun finishes the job exactly once.

The output directory holds:

- ``records.jsonl``: one record per distinct input text, appended batch by
  batch with a single write + fsync. It is the source of truth: a rerun reads
  it, drops a torn last line, and skips every text already there.
- ``docs/shard-<start>-<end>.spacy``: DocBin shards of records ``start..end``,
  written atomically (temp file + rename) after their records. On resume,
  shards that go past the records are deleted and records not covered by a
  shard are re-sharded from the records, so every document is in exactly one
  shard.
- ``report.json``: the run report (docs, skips, duplicates, failures by kind,
  usage from components that report it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Optional

from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..annotations import Failure, record_failure
from ..corpus import RECORDS
from ..records import META_KEY, DocRecord, dumps, from_record, to_record
from .batch import DocError, process
from .io.texts import InputItem, Skip, TextItem

SHARDS = "docs"
REPORT = "report.json"
_SHARD = re.compile(r"shard-(\d+)-(\d+)\.spacy$")


def text_key(text: str) -> str:
    """The identity of an input text: duplicates share it and are annotated once."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class AnnotateReport:
    """What an annotation run did; ``resumed`` counts documents found done from an earlier run."""

    written: int = 0
    resumed: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skip_examples: dict[str, str] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    words: int = 0
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        """Documents annotated in this run per second of wall time."""
        return self.written / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, as written to ``report.json``."""
        return {
            "written": self.written,
            "resumed": self.resumed,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
            "skip_examples": self.skip_examples,
            "failures": dict(self.failures),
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.docs_per_second, 3),
            "words": self.words,
            "usage": self.usage,
        }


def _recover_records(path: Path) -> list[str]:
    """Keys of the complete records in ``records.jsonl``, truncating a torn last line."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        # A kill during the append left half a line: cut it, that doc is redone.
        with path.open("r+b") as handle:
            handle.truncate(end)
    keys = []
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            keys.append(json.loads(line)["meta"]["key"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: not a record written by distil annotate ({err})") from err
    return keys


def _shards(directory: Path) -> list[tuple[int, int, Path]]:
    out = []
    for path in directory.glob("shard-*.spacy"):
        match = _SHARD.search(path.name)
        if match:
            out.append((int(match.group(1)), int(match.group(2)), path))
    return sorted(out)


def _write_shard(directory: Path, start: int, docs: list[Doc]) -> None:
    if not docs:
        return
    doc_bin = DocBin(store_user_data=True)
    for doc in docs:
        doc_bin.add(doc)
    final = directory / f"shard-{start:08d}-{start + len(docs):08d}.spacy"
    tmp = final.with_suffix(".tmp")
    tmp.write_bytes(doc_bin.to_bytes())
    os.replace(tmp, final)


def _repair_shards(directory: Path, records_path: Path, n_records: int, nlp: Language) -> None:
    """Make the shards cover records ``0..n_records`` exactly once."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.tmp"):
        leftover.unlink()
    covered = 0
    for start, end, path in _shards(directory):
        if start != covered or end > n_records:
            path.unlink()  # out of sync with the records (killed between the two writes)
            continue
        covered = end
    if covered < n_records:
        with records_path.open("rb") as handle:
            lines = handle.read().splitlines()[covered:n_records]
        _write_shard(directory, covered, [from_record(json.loads(line), nlp) for line in lines])


def annotate(
    nlp: Language,
    items: Iterable[InputItem],
    output: Path,
    *,
    batch_size: int = 32,
    on_batch: Optional[Callable[[AnnotateReport], None]] = None,
    usage: Optional[Callable[[], dict[str, Any]]] = None,
    limit: Optional[int] = None,
) -> AnnotateReport:
    """Annotate ``items`` into ``output``, resuming a previous run in the same directory.

    ``limit`` stops after that many usable input documents (the first N of the
    corpus, counting those already done), so a rerun with the same limit
    resumes the same set.
    ``on_batch`` is called after every batch (progress display); ``usage``
    returns the components' usage figures for the report.
    """
    output.mkdir(parents=True, exist_ok=True)
    records_path = output / RECORDS
    shard_dir = output / SHARDS
    done_keys = _recover_records(records_path)
    _repair_shards(shard_dir, records_path, len(done_keys), nlp)
    done = set(done_keys)
    report = AnnotateReport()
    n_records = len(done_keys)
    started = time.perf_counter()

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
            if key in done:
                report.resumed += 1
            else:
                yield key, item

    with records_path.open("ab") as sink:
        pending = todo()
        while True:
            batch = list(islice(pending, batch_size))
            if not batch:
                break
            docs: list[Doc] = []
            for (key, item), result in process(nlp, batch, lambda pair: pair[1].pipeline_input(), batch_size=batch_size):
                doc = result if isinstance(result, Doc) else _failed_doc(nlp, item.text, result)
                meta = {**item.meta, "key": key, "source": item.source, "line": item.line}
                doc.user_data[META_KEY] = meta
                docs.append(doc)
            records = [to_record(doc) for doc in docs]
            sink.write("".join(dumps(r) + "\n" for r in records).encode("utf-8"))
            sink.flush()
            os.fsync(sink.fileno())
            _write_shard(shard_dir, n_records, docs)
            n_records += len(docs)
            report.written += len(docs)
            report.words += sum(len(doc) for doc in docs)
            for record in records:
                report.failures.update(f["kind"] for f in record.meta.get("failures", []))
            report.seconds = time.perf_counter() - started
            if usage is not None:
                report.usage = usage()
            if on_batch is not None:
                on_batch(report)
    report.seconds = time.perf_counter() - started
    if usage is not None:
        report.usage = usage()
    (output / REPORT).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return report


def _failed_doc(nlp: Language, text: str, error: DocError[Any]) -> Doc:
    """A doc for an input the pipeline could not process: no annotations, the failure recorded."""
    # Past max_length the tokenizer refuses the text: keep it whole as one token, so the
    # document is not lost, only unannotated.
    doc = nlp.make_doc(text) if len(text) <= nlp.max_length else Doc(nlp.vocab, words=[text], spaces=[False])
    record_failure(doc, Failure("pipeline", "any", "pipeline_error", error.reason))
    return doc


def read_records(output: Path) -> list[DocRecord]:
    """The records of an annotation directory."""
    with (output / RECORDS).open(encoding="utf-8") as handle:
        return [DocRecord.model_validate_json(line) for line in handle if line.strip()]


def rebuild_shards(output: Path, nlp: Language) -> None:
    """Rewrite the DocBin shards of an annotation directory from its records (after they were edited)."""
    shard_dir = output / SHARDS
    for _, _, path in _shards(shard_dir):
        path.unlink()
    _repair_shards(shard_dir, output / RECORDS, len(_recover_records(output / RECORDS)), nlp)
