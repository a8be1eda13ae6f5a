"""Run the review app on uvicorn, holding the annotation store's lock until the server stops.

No access log: a request line would carry the page's query string, and a
log is no place for what reviewers type. uvicorn's own messages (start,
stop, a port already in use) go to stderr as ``distil serve``'s do.
"""

from __future__ import annotations

import os
from typing import Optional

import uvicorn

from ..serve.server import logging_config, signals_end_quietly
from .app import create_app
from .session import ReviewAppError, ReviewSession


def read_token(env_name: Optional[str]) -> Optional[str]:
    """The token held by the environment variable ``env_name`` (None without one); unset or empty is an error."""
    if env_name is None:
        return None
    value = os.environ.get(env_name, "")
    if not value:
        raise ReviewAppError(
            f"--token-env {env_name}: the environment variable {env_name} is not set or empty; export it "
            f"(e.g. export {env_name}=$(openssl rand -hex 32)) or drop --token-env"
        )
    return value


def run_review_server(session: ReviewSession, *, host: str, port: int, reviewer: str, token: Optional[str],
                      log_level: str = "info") -> None:
    """Serve ``session`` until SIGTERM or Ctrl-C, then return; the caller closes the session (and its lock)."""
    app = create_app(session, reviewer=reviewer, token=token, host=host)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=logging_config(log_level), log_level=log_level, access_log=False,
        server_header=False, proxy_headers=False,
    )
    server = uvicorn.Server(config)
    try:
        with signals_end_quietly():
            server.run()
    except SystemExit as err:  # uvicorn exits when it cannot bind; it has logged why
        raise ReviewAppError(f"could not serve on {host}:{port} (the reason is logged above); is another program "
                             "on that port? give another --port") from err
    if not server.started:
        raise ReviewAppError(f"the server on {host}:{port} did not start (the reason is logged above)")
