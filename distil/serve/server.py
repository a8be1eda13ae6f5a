"""Run the app on uvicorn: one process, or ``--workers N`` processes that each load the pipeline once.

Shutdown is uvicorn's: on SIGTERM (or Ctrl-C) it stops accepting
connections, waits for the requests in flight (at most the request deadline
plus a margin), then runs the app's shutdown, which lets the batcher finish
whatever is still queued. The process then exits 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from types import FrameType
from typing import Any, Optional

import uvicorn
from spacy.language import Language

from .app import create_app
from .metrics import MULTIPROC_ENV
from .settings import DRAIN_MARGIN_S, SETTINGS_ENV, ServeError, ServeSettings


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's log setup with distil's loggers: the JSON access log on stdout, everything else on stderr.

    uvicorn's own access log is off: distil's carries the request id and the
    number of documents, and (like uvicorn's) never the document text.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                        "use_colors": None},
            "plain": {"format": "%(message)s"},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "plain", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "distil.serve": {"handlers": ["default"], "level": level, "propagate": False},
            "distil.serve.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """The uvicorn settings shared by the one-process and the multi-process server."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": logging_config(settings.log_level),
        "log_level": settings.log_level,
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.timeout_s) + DRAIN_MARGIN_S,
        # Behind no proxy by default: trusting X-Forwarded-For would let any client forge its address in the log.
        "proxy_headers": False,
        "server_header": False,
    }


def run_server(settings: ServeSettings, nlp: Optional[Language] = None) -> None:
    """Serve until SIGTERM or Ctrl-C, then drain and return (the caller exits 0).

    With one worker, ``nlp`` (loaded by the caller, so that a bad config is a
    plain error before anything listens) is served in this process. With
    several, the pipeline is first loaded once in a throwaway process to fail
    early on a bad config (uvicorn would restart failing workers forever), and
    each worker then loads its own.
    """
    settings.token()  # an unset token variable fails here, before anything listens
    if settings.workers == 1:
        _run_one(settings, nlp)
    else:
        _run_workers(settings)


def _run_one(settings: ServeSettings, nlp: Optional[Language]) -> None:
    server = uvicorn.Server(uvicorn.Config(create_app(settings, nlp), **uvicorn_options(settings)))
    try:
        with signals_end_quietly():
            server.run()
    except SystemExit as err:  # uvicorn exits when it cannot bind; it has logged why
        raise ServeError(f"could not serve on {settings.host}:{settings.port} (the reason is logged above)") from err
    if not server.started:
        raise ServeError(f"the server on {settings.host}:{settings.port} did not start (the reason is logged above)")


def _run_workers(settings: ServeSettings) -> None:
    error = _load_error_in_child(settings)
    if error is not None:
        raise ServeError(error)
    metrics_dir = tempfile.mkdtemp(prefix="distil-serve-metrics-")
    saved = {key: os.environ.get(key) for key in (SETTINGS_ENV, MULTIPROC_ENV)}
    os.environ.update(settings.to_env())
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run("distil.serve.app:app_from_env", factory=True, workers=settings.workers,
                    **uvicorn_options(settings))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _load_error_in_child(settings: ServeSettings) -> Optional[str]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_load_error, settings.model_dump_json()).result()


def _load_error(settings_json: str) -> Optional[str]:
    """Load the pipeline (in a child process) and return the user error it raised, or ``None``."""
    from ..errors import DistilError
    from ..pipeline.config import load_pipeline

    settings = ServeSettings.model_validate_json(settings_json)
    try:
        code = settings.code_path()
        if code is not None:
            from spacy.cli._util import import_code

            import_code(code)
        load_pipeline(settings.source, settings.overrides)
    except (DistilError, OSError) as err:
        return str(err)
    return None


@contextmanager
def signals_end_quietly() -> Iterator[None]:
    """Let uvicorn's graceful shutdown be the end of a SIGTERM or SIGINT (``distil serve``, ``review serve``).

    After a graceful shutdown uvicorn re-raises the signal it caught, to the
    handler that was there before it; with Python's defaults that would kill
    the process by SIGTERM (exit status -15) or raise KeyboardInterrupt,
    instead of exiting 0 after draining. A no-op handler takes the re-raise.
    """

    def ignore(_signum: int, _frame: Optional[FrameType]) -> None:
        return None

    previous = {sig: signal.signal(sig, ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()
