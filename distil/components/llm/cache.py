"""A SQLite cache of LLM answers keyed by (model identity and sampling settings, full prompt).

The key is a hash of everything that determines the answer: the model's
identity (name, endpoint or file, sampling settings) and the full prompt with
its answer schema. A changed prompt, schema, model or temperature is a miss,
never a stale hit. Only answers that validated are stored. The database runs
in WAL mode with one connection per thread and a busy timeout, so concurrent
writers (threads or processes) are safe and a crash loses at most the answer
being written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

from spacy_llm.registry import registry

DEFAULT_CACHE_PATH = "~/.cache/distil/llm_cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(model_identity: dict[str, Any], prompt: str, json_schema: dict[str, Any]) -> str:
    """The cache key of a prompt asked of a model (hex SHA-256)."""
    payload = json.dumps({"model": model_identity, "prompt": prompt, "schema": json_schema}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers by key in a SQLite file; see the module docstring for the guarantees."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"LLM cache: cannot create the directory of {self.path}: {err}") from err
        self._local = threading.local()
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn: Optional[sqlite3.Connection] = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except sqlite3.Error as err:
                raise ValueError(f"LLM cache: cannot open {self.path} as a SQLite database: {err}") from err
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Optional[str]:
        """The stored answer for ``key``, or ``None``."""
        row = self._connect().execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, model: str, answer: str) -> None:
        """Store an answer (replacing any earlier one for the same key)."""
        self._connect().execute(
            "INSERT OR REPLACE INTO answers (key, model, answer, created) VALUES (?, ?, ?, ?)",
            (key, model, answer, time.time()),
        )

    def __len__(self) -> int:
        row = self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()
        return int(row[0])

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class UsesResponseCache:
    """Mixin for models with an optional ``cache``: lets commands switch it off for a timed run.

    ``distil compare`` measures speed and cost; answers served from a cache an
    earlier run filled would make a model look free and instant.
    """

    cache: Optional[ResponseCache]
    _parked_cache: Optional[ResponseCache] = None

    def distil_use_cache(self, enabled: bool) -> None:
        """Switch this model's response cache off (``False``) or back on (``True``)."""
        if not enabled and self.cache is not None:
            self._parked_cache, self.cache = self.cache, None
        elif enabled and self._parked_cache is not None:
            self.cache, self._parked_cache = self._parked_cache, None


@registry.llm_misc("distil.ResponseCache.v1")
def make_response_cache(path: str = DEFAULT_CACHE_PATH, enabled: bool = True) -> Optional[ResponseCache]:
    """The answer cache for a distil LLM model; ``enabled = false`` switches it off."""
    return ResponseCache(path) if enabled else None
