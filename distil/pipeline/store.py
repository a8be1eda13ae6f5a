"""The annotation store: the one module that owns an annotation directory (``distil annotate --output DIR``).

A directory holds:

- ``records.jsonl``: one JSON record per input text (its ``meta.key`` is a
  hash of the text), appended batch by batch with one write and an fsync. It
  is the only representation of the annotations: DocBin is an export
  (``distil convert DIR out.spacy``), not a second copy kept in step. A text
  annotated again (``--retry-failed``) is appended anew and the last record
  of a key counts; the writer compacts the file to one record per key when a
  run ends, and readers (:func:`distil.corpus.read_annotation_records`) apply
  the same rule before that.
- ``job.json``: the fingerprint of the job (the pipeline's components, the
  model identity of each LLM, the prompt templates, the schemas) and the
  history of jobs that wrote here. Resuming with another fingerprint is an
  error naming what changed, unless the caller starts a new job.
- ``report.json``: the run report, rewritten atomically after every block,
  so a long run can be watched and a killed one still says how far it got.
- ``.lock``: held (``flock``) by the one process that writes. The operating
  system releases it when that process dies, even by ``kill -9``, so a
  crashed run never leaves a stale lock behind.

Readers (train, evaluate, review export) take no lock: appends are whole
lines, and a torn last line is not a record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Optional

from ..corpus import RECORDS, complete_lines, read_annotation_records, record_key, text_key
from ..errors import DistilError
from ..records import DocRecord, dumps

JOB = "job.json"
REPORT = "report.json"
LOCK = ".lock"
FORMAT = 2
# DocBin shards that format 1 kept beside the records (nothing read them).
LEGACY_SHARDS = "docs"


class StoreError(DistilError, ValueError):
    """An annotation directory cannot be used as asked; the message names the directory and the fix."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def fingerprint_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two job fingerprints, one line per part, with the old and the new value."""

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 160 else text[:157] + "..."

    lines = []
    for part in sorted(set(old) | set(new)):
        if old.get(part) != new.get(part):
            if part not in old:
                lines.append(f"{part} is new ({short(new[part])})")
            elif part not in new:
                lines.append(f"{part} is gone (was {short(old[part])})")
            else:
                lines.append(f"{part} changed: was {short(old[part])}, now {short(new[part])}")
    return lines


class AnnotationStore:
    """A writer's handle on an annotation directory: the lock, the job, appends, the live report.

    Open it with :meth:`open` (a context manager): that takes the lock,
    checks the job's fingerprint, cuts a torn last line and reads which keys
    are done. ``fingerprint`` None skips the job check (review import, which
    edits the records of whatever job wrote them).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.records_path = self.directory / RECORDS
        self.job_id = ""
        self.done: dict[str, bool] = {}  # key -> whether its record has a failure
        self._lock_fd: Optional[int] = None
        self._appended_repeats = False

    @classmethod
    def open(
        cls, directory: Path, *, fingerprint: Optional[Mapping[str, Any]] = None, new_job: bool = False,
        command: str = "distil annotate",
    ) -> AnnotationStore:
        """Lock ``directory`` for writing (creating it) and load its state; see the class docstring."""
        store = cls(directory)
        store.directory.mkdir(parents=True, exist_ok=True)
        store._lock(command)
        try:
            store._remove_legacy_shards()
            store._recover()
            if fingerprint is not None:
                store._check_job(dict(fingerprint), new_job)
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], err: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    # -- the lock -------------------------------------------------------------------------------------------

    def _lock(self, command: str) -> None:
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"{self.directory} is being written by another run ({holder}). Two writers would duplicate "
                "records; wait for that run to end or stop it, or write to another --output directory"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, {command}, since {started}\n".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        """Release the lock (the records are already on disk: every append was synced)."""
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- state on opening --------------------------------------------------------------------------------------

    def _remove_legacy_shards(self) -> None:
        shards = self.directory / LEGACY_SHARDS
        if shards.is_dir() and all(p.name.startswith("shard-") for p in shards.iterdir()):
            for path in shards.iterdir():
                path.unlink()
            shards.rmdir()

    def _recover(self) -> None:
        """Cut a torn last line (a writer killed mid-append; that document is redone) and read the done keys."""
        if not self.records_path.exists():
            self.records_path.touch()
            return
        size = self.records_path.stat().st_size
        end = 0
        for number, offset, raw in complete_lines(self.records_path):
            end = offset + len(raw)
            if raw.strip():
                key = record_key(raw, f"{self.records_path}:{number}")
                self._appended_repeats = self._appended_repeats or key in self.done
                # Only a line that mentions failures is parsed again (most records have none).
                self.done[key] = b'"failures"' in raw and bool((json.loads(raw).get("meta") or {}).get("failures"))
        if end < size:
            with self.records_path.open("r+b") as handle:
                handle.truncate(end)

    def _check_job(self, fingerprint: dict[str, Any], new_job: bool) -> None:
        path = self.directory / JOB
        digest = _digest(fingerprint)
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        if path.exists():
            job = json.loads(path.read_text(encoding="utf-8"))
            old = job.get("fingerprint", {})
            if old != fingerprint and not new_job:
                changes = fingerprint_changes(old, fingerprint)
                raise StoreError(
                    f"{self.directory} holds {len(self.done)} record(s) of another job; resuming would mix their "
                    "answers with this pipeline's. What changed: " + "; ".join(changes) + ". Write to a new "
                    "--output directory, or give --new-job to go on here (records already there are kept and "
                    "not redone; each record's meta.job names the job that wrote it)"
                )
            if old != fingerprint:
                job["jobs"].append({"job": digest, "started": now, "fingerprint": fingerprint})
        else:
            # A directory of records written before fingerprints existed is adopted as this job's.
            job = {"format": FORMAT, "jobs": [{"job": digest, "started": now, "fingerprint": fingerprint}],
                   "adopted_records": len(self.done)}
        job.update(fingerprint=fingerprint, job=digest)
        _atomic_write(path, json.dumps(job, indent=2, default=str))
        self.job_id = digest

    # -- writing ---------------------------------------------------------------------------------------------

    def append(self, records: Iterable[DocRecord]) -> int:
        """Append records (one write, then fsync): once this returns they survive a kill. Returns the count."""
        lines = []
        for record in records:
            key = str(record.meta.get("key") or text_key(record.text))
            if self.job_id:
                record.meta.setdefault("job", self.job_id)
            self._appended_repeats = self._appended_repeats or key in self.done
            self.done[key] = bool(record.meta.get("failures"))
            lines.append(dumps(record) + "\n")
        if lines:
            with self.records_path.open("ab") as sink:
                sink.write("".join(lines).encode("utf-8"))
                sink.flush()
                os.fsync(sink.fileno())
        return len(lines)

    def rewrite(self, records: Iterable[DocRecord]) -> int:
        """Replace every record at once (temp file, fsync, rename): a kill leaves the old file or the new one."""
        tmp = self.records_path.with_name(RECORDS + ".tmp")
        count = 0
        self.done = {}
        with tmp.open("wb") as sink:
            for record in records:
                sink.write((dumps(record) + "\n").encode("utf-8"))
                self.done[str(record.meta.get("key") or text_key(record.text))] = bool(record.meta.get("failures"))
                count += 1
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, self.records_path)
        self._appended_repeats = False
        return count

    def compact(self) -> bool:
        """Keep one record per key (the last) in first-written order, if any key was appended twice."""
        if not self._appended_repeats:
            return False
        self.rewrite(list(read_annotation_records(self.directory)))
        return True

    def records(self) -> Iterator[DocRecord]:
        """The records, one per key (the last written), in first-written order."""
        return read_annotation_records(self.directory)

    def write_report(self, report: Mapping[str, Any]) -> None:
        """Replace ``report.json`` atomically (readers never see half a report)."""
        _atomic_write(self.directory / REPORT, json.dumps(report, indent=2, default=str))

    @property
    def failed_keys(self) -> set[str]:
        """Keys whose last record has a failure (what ``--retry-failed`` redoes)."""
        return {key for key, failed in self.done.items() if failed}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
