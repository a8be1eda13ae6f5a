"""A SQLite cache of LLM answers keyed by (model identity and sampling settings, full prompt).

The key is a hash of everything that determines the answer: the model's
identity (name, endpoint or file, sampling settings) and the full prompt with
its answer schema. A changed prompt, schema, model or temperature is a miss,
never a stale hit. Only answers that validated are stored. The database runs
in WAL mode with one connection per thread and a busy timeout, so concurrent
writers (threads or processes) are safe and a crash loses at most the answer
being written.

An answer is stored with its tokens' log-probabilities when the model gave
them (a ``tokens`` column, added to older cache files on open), so a cached
answer scores its items exactly like a fresh one.
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

from .protocol import TokenLogprob, TokenLogprobs

DEFAULT_CACHE_PATH = "~/.cache/distil/llm_cache.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def encode_tokens(tokens: Optional[TokenLogprobs]) -> Optional[str]:
    """Tokens as compact JSON for the cache (``None`` stays ``None``)."""
    if tokens is None:
        return None
    return json.dumps([[t.text, t.logprob, [list(alt) for alt in t.top]] for t in tokens], ensure_ascii=False)


def decode_tokens(text: Optional[str]) -> Optional[TokenLogprobs]:
    """The tokens :func:`encode_tokens` stored; ``None`` when there are none or they are unreadable."""
    if not text:
        return None
    try:
        return tuple(
            TokenLogprob(str(piece), float(logprob), tuple((str(a), float(b)) for a, b in top))
            for piece, logprob, top in json.loads(text)
        )
    except (ValueError, TypeError):
        return None


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
                columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)")}
                if "tokens" not in columns:
                    try:
                        conn.execute("ALTER TABLE answers ADD COLUMN tokens TEXT")
                    except sqlite3.OperationalError:
                        pass  # another connection added it in between
            except sqlite3.Error as err:
                raise ValueError(f"LLM cache: cannot open {self.path} as a SQLite database: {err}") from err
            self._local.conn = conn
        return conn

    def get(self, key: str) -> Optional[str]:
        """The stored answer for ``key``, or ``None``."""
        entry = self.get_entry(key)
        return None if entry is None else entry[0]

    def get_entry(self, key: str) -> Optional[tuple[str, Optional[TokenLogprobs]]]:
        """The stored answer for ``key`` with its tokens (``None`` if stored without), or ``None``."""
        row = self._connect().execute("SELECT answer, tokens FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else (str(row[0]), decode_tokens(row[1]))

    def put(self, key: str, model: str, answer: str, tokens: Optional[TokenLogprobs] = None) -> None:
        """Store an answer and its tokens' log-probabilities (replacing any earlier one for the same key)."""
        self._connect().execute(
            "INSERT OR REPLACE INTO answers (key, model, answer, created, tokens) VALUES (?, ?, ?, ?, ?)",
            (key, model, answer, time.time(), encode_tokens(tokens)),
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
