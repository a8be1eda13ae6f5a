"""Dotted config overrides from the command line, as ``spacy train`` takes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from spacy.cli._util import parse_config_overrides

from ..config import ConfigError
from .app import print_error


def config_overrides(ctx: typer.Context) -> dict[str, Any]:
    """Parse the extra ``--section.key value`` arguments of a command into overrides."""
    try:
        return parse_config_overrides(list(ctx.args))
    except SystemExit as err:  # spaCy's parser exits on malformed overrides
        raise ConfigError(f"malformed config override in {' '.join(ctx.args)!r}: use --section.key value") from err


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for the user (no traceback) and return the exit to raise.

    Raising a :class:`~distil.errors.DistilError` does the same through the
    CLI's central handler; this stays for commands that end with a given code.
    """
    print_error(message)
    return typer.Exit(code)


def split_overrides(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Separate positional values from ``--section.key value`` overrides in extra arguments.

    Click hands a command's unknown options and its variadic arguments over in
    one list; an option name with a dot is a config override, everything else
    is positional. ``--section.key=value`` and a bare flag (``--x.y`` meaning
    true) are accepted as spaCy does.
    """
    positional: list[str] = []
    override_args: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "." in arg.split("=", 1)[0]:
            override_args.append(arg)
            if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--"):
                override_args.append(args[i + 1])
                i += 1
        elif arg.startswith("--"):
            raise ConfigError(f"unknown option {arg!r}; config overrides look like --section.key value")
        else:
            positional.append(arg)
        i += 1
    try:
        return positional, parse_config_overrides(override_args)
    except SystemExit as err:
        raise ConfigError(f"malformed config override in {' '.join(override_args)!r}") from err


def overrides_per_pipeline(names: list[str], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Share ``--section.key value`` overrides out among named pipelines (``distil compare``).

    ``--NAME.section.key value`` applies to pipeline NAME only; a plain
    ``--section.key value`` applies when there is one pipeline, and is
    ambiguous (an error naming the prefixed form) when there are several.
    """
    per_pipeline: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head in per_pipeline and "." in rest:
            per_pipeline[head][rest] = value
        elif len(names) == 1:
            per_pipeline[names[0]][key] = value
        else:
            raise ConfigError(
                f"override --{key} does not say which pipeline it is for ({', '.join(names)}): "
                f"prefix it with the pipeline's name, e.g. --{names[0]}.{key}"
            )
    return per_pipeline


def import_code(path: Optional[Path]) -> None:
    """Import a Python file with custom components or registered functions (spaCy's ``--code``)."""
    if path is None:
        return
    if not path.exists():
        raise fail(f"--code file not found: {path}")
    from spacy.cli._util import import_code as spacy_import_code

    spacy_import_code(path)
