"""``distil package``: an installable pipeline wheel, like ``spacy package``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..package import build_package
from .app import OVERRIDES_CONTEXT, app
from .overrides import config_overrides


@app.command("package", context_settings=OVERRIDES_CONTEXT)
def package_command(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Pipeline config (.cfg), a directory saved with nlp.to_disk, or an installed package."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the package and dist/*.whl."),
    name: str = typer.Option(..., "--name", "-n", help="Package name (identifier); installed as <lang>_<name>."),
    version: str = typer.Option("0.0.1", "--version", "-v", help="Package version (PEP 440, e.g. 1.0.0)."),
    no_wheel: bool = typer.Option(False, "--no-wheel", help="Only write the package directory."),
) -> None:
    """Build an installable pipeline package bundling the components' models.

    Install the wheel in production and load the pipeline by name with
    spacy.load("en_NAME") or distil.load("en_NAME"). Config overrides go after
    the options (e.g. --paths.model DIR to freeze a trained student in).

    Example: distil package configs/ner_encoder.cfg --output packages/ --name ner_student --paths.model models/ner
    """
    # A ConfigError or PackageError goes to the CLI's handler, which prints it as one line.
    built = build_package(source, output, name=name, version=version, overrides=config_overrides(ctx),
                          wheel=not no_wheel)
    typer.echo(f"distil package: {built}", err=True)
    typer.echo(str(built))
