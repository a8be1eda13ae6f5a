"""``distil export``: (re-)export a trained encoder model directory to ONNX fp32 and int8."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .app import app
from .overrides import fail


@app.command("export")
def export_command(
    model_dir: Path = typer.Argument(..., help="Model directory written by distil train (with its torch/ checkpoint)."),
) -> None:
    """Export MODEL_DIR's torch checkpoint to model.onnx (fp32) and model.int8.onnx.

    Int8 is onnxruntime dynamic quantization with per-channel weights. The max
    absolute difference between ONNX and torch logits on sample dev inputs is
    printed and recorded in manifest.json.

    Example: distil export models/ner
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from ...components.encoder.manifest import ModelDirError
        from ...training.export import export_model_dir
    except ImportError as err:
        raise fail(f"export needs the train extra (torch, transformers, onnx): {err}") from None
    try:
        export_model_dir(model_dir)
    except (ModelDirError, OSError) as err:
        raise fail(str(err)) from None
