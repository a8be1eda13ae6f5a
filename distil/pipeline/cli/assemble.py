"""``distil assemble``: build a pipeline from its config and save it, like ``spacy assemble``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import load_pipeline
from .app import OVERRIDES_CONTEXT, app
from .overrides import config_overrides, fail


@app.command("assemble", context_settings=OVERRIDES_CONTEXT)
def assemble_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg), saved pipeline directory or installed package."),
    output: Path = typer.Argument(..., help="Directory to save the pipeline to (nlp.to_disk); created if missing."),
) -> None:
    """Build the pipeline a config declares (with overrides) and save it; load it later with spacy.load.

    Freezes settings such as a trained model's path into a self-contained
    directory that `distil run`, `evaluate` and `compare` accept in place of a
    config.

    Example: distil assemble configs/ner_encoder.cfg pipelines/ner_student --paths.model training/ner/model
    """
    if output.exists() and not output.is_dir():
        raise fail(f"{output} is a file; give a directory to save the pipeline to")
    # Errors (a bad config, an unwritable OUTPUT) go to the CLI's handler, which prints them as one line.
    nlp = load_pipeline(config, config_overrides(ctx))
    output.mkdir(parents=True, exist_ok=True)  # like --output elsewhere: missing parents are created
    nlp.to_disk(output)
    typer.echo(f"distil assemble: saved {', '.join(nlp.pipe_names)} to {output}", err=True)
