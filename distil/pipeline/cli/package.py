"""``distil package``: an installable pipeline wheel, like ``spacy package``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import ConfigError
from ..package import PackageError, build_package
from .app import OVERRIDES_CONTEXT, app
from .overrides import config_overrides, fail


@app.command("package", context_settings=OVERRIDES_CONTEXT)
def package_command(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="Pipeline config (.cfg) or a directory saved with nlp.to_disk."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the package and dist/*.whl."),
    name: str = typer.Option(..., "--name", "-n", help="Package name (identifier); installed as <lang>_<name>."),
    version: str = typer.Option("0.0.1", "--version", "-v", help="Package version."),
    no_wheel: bool = typer.Option(False, "--no-wheel", help="Only write the package directory."),
) -> None:
    """Build an installable pipeline package bundling the components' models.

    Install the wheel in production and load the pipeline by name with
    spacy.load("en_NAME") or distil.load("en_NAME"). Config overrides go after
    the options (e.g. --paths.model DIR to freeze a trained student in).

    Example: distil package configs/ner_encoder.cfg --output packages/ --name ner_student --paths.model models/ner
    """
    try:
        built = build_package(source, output, name=name, version=version, overrides=config_overrides(ctx),
                              wheel=not no_wheel)
    except (ConfigError, PackageError) as err:
        raise fail(str(err)) from None
    typer.echo(f"distil package: {built}", err=True)
    typer.echo(str(built))
