"""Render task prompts from sandboxed Jinja2 templates.

Built-in templates live in ``distil/prompts/`` (one per task); a task may be
given the path of its own template instead. The sandbox keeps a template from
reaching Python internals, so a template file is as safe to load as a config.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Optional

import jinja2
from jinja2.sandbox import SandboxedEnvironment

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


@cache
def _environment(directory: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def load_template(builtin: str, path: Optional[str] = None) -> jinja2.Template:
    """The built-in template ``builtin`` (e.g. ``"ner.jinja"``), or the template file at ``path``.

    Raises ``ValueError`` naming the file when it is missing or not valid Jinja.
    """
    if path is None:
        directory, name = PROMPTS_DIR, builtin
    else:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ValueError(f"prompt template not found: {file}. Give the path of a .jinja file or leave it unset.")
        directory, name = file.resolve().parent, file.name
    try:
        return _environment(str(directory)).get_template(name)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(f"prompt template {directory / name}, line {err.lineno}: {err.message}") from err


def render(template: jinja2.Template, **values: Any) -> str:
    """Render a prompt; an undefined variable in the template raises ``ValueError`` naming it."""
    try:
        return template.render(**values)
    except jinja2.UndefinedError as err:
        raise ValueError(f"prompt template {template.filename}: {err.message}") from err
