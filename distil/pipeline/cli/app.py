"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="distil",
    help="Config-declared NLP pipelines with swappable LLM, encoder and rule components.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Commands that take a CONFIG accept spaCy-style dotted overrides after their
# own options (``--paths.model DIR``), so unknown options must reach them.
OVERRIDES_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
