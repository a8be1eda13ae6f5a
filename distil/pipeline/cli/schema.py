"""``distil schema``: print the JSON Schema of the document record (or of a task schema)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from pydantic import BaseModel

from ...records import record_json_schema
from ...schemas import NERSchema, RELSchema, TextCatSchema
from .app import app
from .overrides import fail

_TASK_SCHEMAS: dict[str, type[BaseModel]] = {"ner": NERSchema, "textcat": TextCatSchema, "rel": RELSchema}


@app.command("schema")
def schema_command(
    task: Optional[str] = typer.Argument(
        None, help="Omit for the document record; 'ner', 'textcat' or 'rel' for that task schema's JSON Schema."
    ),
) -> None:
    """Print a JSON Schema: the document record that `distil run` writes, or a task schema.

    Example: distil schema > record.schema.json
    """
    if task is None:
        schema = record_json_schema()
    elif task in _TASK_SCHEMAS:
        schema = _TASK_SCHEMAS[task].model_json_schema()
    else:
        raise fail(f"unknown task {task!r}; choose one of: {', '.join(_TASK_SCHEMAS)}")
    typer.echo(json.dumps(schema, indent=2))
