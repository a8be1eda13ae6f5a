"""``distil assemble``: build a pipeline from its config and save it, like ``spacy assemble``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import ConfigError, load_pipeline
from .app import OVERRIDES_CONTEXT, app
from .overrides import config_overrides, fail


@app.command("assemble", context_settings=OVERRIDES_CONTEXT)
def assemble_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg)."),
    output: Path = typer.Argument(..., help="Directory to save the pipeline to (nlp.to_disk)."),
) -> None:
    """Build the pipeline a config declares (with overrides) and save it; load it later with spacy.load.

    Freezes settings such as a trained model's path into a self-contained
    directory that `distil run`, `evaluate` and `compare` accept in place of a
    config.

    Example: distil assemble configs/ner_encoder.cfg pipelines/ner_student --paths.model training/ner/model
    """
    try:
        nlp = load_pipeline(config, config_overrides(ctx))
    except ConfigError as err:
        raise fail(str(err)) from None
    nlp.to_disk(output)
    typer.echo(f"distil assemble: saved {', '.join(nlp.pipe_names)} to {output}", err=True)
