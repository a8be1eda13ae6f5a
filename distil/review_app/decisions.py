"""The reviewers' decisions in SQLite (``DIR/review.sqlite``): every decision a row, committed at once.

Tables:

- ``decisions``: one row per decision, never updated: ``id``, ``reviewer``,
  ``key`` (the record's ``meta.key``), ``decision`` (``accept``, ``reject`` or
  ``correct``), ``record`` (the reviewed record as JSON; the teacher's record
  for ``reject``), ``created_at`` (UTC, ISO 8601). A reviewer who decides a
  document again adds a row; the latest row of a (reviewer, key) counts.
- ``teacher``: the teacher's record of each document, as it was before any
  review. The annotation store keeps the last record of a key only, so once
  a document is reviewed the store no longer has the teacher's answer; the
  review order (by the teacher's confidence) and the agreement with the
  teacher are computed from this copy, so a restart sees the same order.

Writes go through one connection guarded by a lock (FastAPI runs plain
endpoints on a thread pool); ``synchronous=FULL`` makes a committed decision
survive a crash of the machine, not only of the process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Optional

from ..records import DocRecord, dumps

DATABASE = "review.sqlite"
Decision = Literal["accept", "reject", "correct"]
DECISIONS: tuple[str, ...] = ("accept", "reject", "correct")
# What a decision writes to the record's meta.review in the annotation store.
REVIEW_META: dict[str, str] = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    key TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'correct')),
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_reviewer ON decisions (reviewer, key);
CREATE TABLE IF NOT EXISTS teacher (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class DecisionRow:
    """One reviewer's decision on one document."""

    id: int
    reviewer: str
    key: str
    decision: Decision
    record: DocRecord
    created_at: str


class DecisionLog:
    """The SQLite file of one annotation directory's review: decisions and the teacher's records."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (every decision is already committed)."""
        with self._lock:
            self._db.close()

    # -- the teacher's records --------------------------------------------------------------------------------

    def teacher_records(self) -> dict[str, DocRecord]:
        """The teacher's record of every document seen so far, by key."""
        with self._lock:
            rows = self._db.execute("SELECT key, record FROM teacher").fetchall()
        return {key: DocRecord.model_validate_json(raw) for key, raw in rows}

    def save_teacher_records(self, records: Iterable[tuple[str, DocRecord]]) -> None:
        """Keep (or replace) the teacher's record of these documents, in one transaction."""
        rows = [(key, dumps(record)) for key, record in records]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO teacher (key, record) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    # -- decisions ------------------------------------------------------------------------------------------

    def add(self, reviewer: str, key: str, decision: Decision, record: DocRecord) -> DecisionRow:
        """Insert one decision and commit it; returns the row as saved."""
        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO decisions (reviewer, key, decision, record, created_at) VALUES (?, ?, ?, ?, ?)",
                (reviewer, key, decision, dumps(record), created),
            )
            row_id = int(cursor.lastrowid or 0)
        return DecisionRow(row_id, reviewer, key, decision, record, created)

    def rows(self, reviewer: Optional[str] = None) -> list[DecisionRow]:
        """Every decision (of ``reviewer``, or of everyone), oldest first."""
        query = "SELECT id, reviewer, key, decision, record, created_at FROM decisions"
        args: tuple[str, ...] = ()
        if reviewer is not None:
            query += " WHERE reviewer = ?"
            args = (reviewer,)
        with self._lock:
            raw = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [DecisionRow(i, who, key, decision, DocRecord.model_validate_json(record), at)
                for i, who, key, decision, record, at in raw]

    def latest(self, reviewer: Optional[str] = None) -> dict[tuple[str, str], DecisionRow]:
        """The decision that counts for each (reviewer, key): the latest one."""
        return {(row.reviewer, row.key): row for row in self.rows(reviewer)}

    def reviewers(self) -> list[str]:
        """Everyone who decided at least one document, in the order they first did."""
        with self._lock:
            raw = self._db.execute("SELECT reviewer, MIN(id) FROM decisions GROUP BY reviewer ORDER BY 2").fetchall()
        return [name for name, _ in raw]
