"""Dotted config overrides from the command line, as ``spacy train`` takes them."""

from __future__ import annotations

from typing import Any

import typer
from spacy.cli._util import parse_config_overrides

from ..config import ConfigError


def config_overrides(ctx: typer.Context) -> dict[str, Any]:
    """Parse the extra ``--section.key value`` arguments of a command into overrides."""
    try:
        return parse_config_overrides(list(ctx.args))
    except SystemExit as err:  # spaCy's parser exits on malformed overrides
        raise ConfigError(f"malformed config override in {' '.join(ctx.args)!r}: use --section.key value") from err


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for the user (no traceback) and return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)
