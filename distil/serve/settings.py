"""The settings of one ``distil serve`` process, and how they reach uvicorn's worker processes.

``--workers N`` makes uvicorn spawn fresh interpreters that build the app from
an import string, so the settings travel as JSON in an environment variable
(:data:`SETTINGS_ENV`). The bearer token never does: the settings hold only the
*name* of the variable that holds it, which each worker reads itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..errors import DistilError

SETTINGS_ENV = "DISTIL_SERVE_SETTINGS"

# Seconds added to the request deadline for draining on shutdown (connections, then the batcher's queue): a
# request still running after its own deadline has already been answered 504, so waiting longer would only
# delay the exit.
DRAIN_MARGIN_S = 5


class ServeError(DistilError):
    """A ``distil serve`` setting that cannot work (a token variable that is not set, a bad limit)."""


class ServeSettings(BaseModel):
    """Everything a serving process needs to build its app: the pipeline to load and the limits to apply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="Config path, pipeline directory or installed pipeline package name.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted config overrides.")
    code: Optional[str] = Field(default=None, description="Python file imported before loading (custom components).")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(default=1, ge=1)
    max_batch_size: int = Field(default=32, ge=1, description="Most documents per nlp.pipe call.")
    max_wait_ms: float = Field(default=2.0, ge=0, description="Longest a batch waits for more documents.")
    max_queue: int = Field(default=512, ge=1, description="Documents waiting at most; beyond: 503.")
    max_texts: int = Field(default=256, ge=1, description="Texts per request at most; beyond: 413.")
    timeout_s: float = Field(default=30.0, gt=0, description="Deadline of a request, queueing included; past: 504.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1, description="Request body size limit; beyond: 413.")
    max_text_chars: Optional[int] = Field(
        default=None, ge=1, description="Text length limit in characters (default and ceiling: nlp.max_length)."
    )
    token_env: Optional[str] = Field(default=None, description="Environment variable holding the bearer token.")
    log_level: str = "info"

    def token(self) -> Optional[str]:
        """The bearer token read from ``token_env`` (``None`` when auth is off); an unset variable is an error."""
        if self.token_env is None:
            return None
        value = os.environ.get(self.token_env, "")
        if not value:
            raise ServeError(
                f"--token-env {self.token_env}: the environment variable {self.token_env} is not set or empty; "
                f"export it (e.g. export {self.token_env}=$(openssl rand -hex 32)) or drop --token-env"
            )
        return value

    def code_path(self) -> Optional[Path]:
        """The ``--code`` file as a path, or ``None``."""
        return Path(self.code) if self.code else None

    def to_env(self) -> dict[str, str]:
        """The environment entry that hands these settings to worker processes."""
        return {SETTINGS_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> ServeSettings:
        """The settings the parent process put in :data:`SETTINGS_ENV`."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise ServeError(f"{SETTINGS_ENV} is not set: start workers with `distil serve`, not uvicorn directly")
        return cls.model_validate_json(raw)
