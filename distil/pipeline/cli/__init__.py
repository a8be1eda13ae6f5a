"""The ``distil`` command line: one module per command, all registered on :data:`app`."""

from __future__ import annotations

from .app import app


def main() -> None:
    """Entry point of the ``distil`` console script."""
    from . import commands  # noqa: F401  (registers the commands on the app)

    app()


__all__ = ["app", "main"]
