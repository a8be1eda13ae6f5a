"""The model directory an encoder is trained into and loaded from, and its manifest.

A model directory holds ``model.onnx`` (fp32), ``model.int8.onnx`` (dynamic
int8, per-channel weights), ``model.int8s.onnx`` (static int8, QDQ, activation
scales calibrated on training inputs; written when the checkpoint has
calibration inputs), ``tokenizer.json`` (for the ``tokenizers``
library), and ``manifest.json``: the task, the output classes, the schema the
model was trained for, the maximum input length, dev metrics and the ONNX vs
torch agreement. ``torch/`` keeps the fine-tuned checkpoint so that
``distil export`` can export again.

Relation models also record their ``architecture`` (``pairs``: one marked input
per candidate pair; ``one_pass``: one input per document, every pair classified
from the entity states) and their ``decision``: how a relation is told from
``no relation`` (:data:`ARGMAX`, or thresholds tuned on dev; see
:mod:`distil.components.encoder.relations`). Manifests written before these
fields read as a per-pair model with the argmax decision.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ...errors import DistilError
from ...schemas import NERSchema, RELSchema, SchemaError, TaskSchema, TextCatSchema

FORMAT = "distil-encoder/1"
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "int8_static": "model.int8s.onnx"}
TORCH_DIR = "torch"
NO_RELATION = "no relation"
PRECISIONS = tuple(ONNX_FILES)
ARCHITECTURES = ("pairs", "one_pass")
# The relation decisions: the most probable class wins (no relation included), or a relation label wins
# when its probability reaches a threshold tuned on dev (global, or per label).
ARGMAX = "argmax"
THRESHOLD = "threshold"

PathLike = Union[str, Path]


class ModelDirError(DistilError, ValueError):
    """A model directory is missing, incomplete or for another task."""


@dataclass
class Manifest:
    """What a runtime needs to know about an exported encoder."""

    task: str
    classes: list[str]
    labels: list[str]
    schema: dict[str, Any]
    max_length: int
    base_model: str = ""
    format: str = FORMAT
    dev: dict[str, Any] = field(default_factory=dict)
    onnx_max_abs_diff: dict[str, float] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=lambda: ["input_ids", "attention_mask"])
    extra: dict[str, Any] = field(default_factory=dict)
    architecture: str = "pairs"
    decision: dict[str, Any] = field(default_factory=dict)

    def to_disk(self, directory: PathLike) -> None:
        """Write ``manifest.json`` into ``directory``."""
        Path(directory, MANIFEST).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", "utf-8")

    @classmethod
    def from_disk(cls, directory: PathLike) -> Manifest:
        """Read the manifest of a model directory, with an error that says how to make one."""
        path = Path(directory, MANIFEST)
        if not path.exists():
            raise ModelDirError(
                f"{directory} is not an encoder model directory (no {MANIFEST}); "
                f"create one with `distil train TASK TRAIN DEV --output {directory}`"
            )
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as err:
            raise ModelDirError(f"{path}: unreadable manifest ({err})") from err
        if data.get("format") != FORMAT:
            raise ModelDirError(f"{path}: unknown format {data.get('format')!r}, expected {FORMAT!r}")
        known = set(cls.__dataclass_fields__)
        manifest = cls(**{key: value for key, value in data.items() if key in known})
        if manifest.architecture not in ARCHITECTURES:
            raise ModelDirError(
                f"{path}: unknown relation architecture {manifest.architecture!r}, expected one of {', '.join(ARCHITECTURES)}"
            )
        rule = manifest.decision.get("rule", ARGMAX)
        if rule not in (ARGMAX, THRESHOLD):
            raise ModelDirError(f"{path}: unknown relation decision rule {rule!r}, expected {ARGMAX!r} or {THRESHOLD!r}")
        return manifest

    def task_schema(self) -> TaskSchema:
        """The schema the model was trained for, as a pydantic object."""
        if self.task == "ner":
            return NERSchema.model_validate(self.schema)
        if self.task == "textcat":
            return TextCatSchema.model_validate(self.schema)
        return RELSchema.model_validate(self.schema)


def onnx_path(directory: PathLike, precision: str) -> Path:
    """The ONNX file of a precision, checked to exist."""
    if precision not in ONNX_FILES:
        raise ModelDirError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    path = Path(directory, ONNX_FILES[precision])
    if not path.exists():
        if precision == "int8_static":
            raise ModelDirError(
                f"{path} is missing; static int8 is calibrated on training inputs that `distil train` saves in "
                f"{TORCH_DIR}/calibration_inputs.npz: retrain, or write them from a training corpus with "
                f"`python -m distil.training.export {directory} --calibrate TRAIN.spacy`"
            )
        raise ModelDirError(f"{path} is missing; run `distil export {directory}` to write it")
    return path


def check_model_schema(manifest: Manifest, schema: TaskSchema, directory: PathLike, task: str) -> None:
    """Fail at load time when a model does not fit the pipeline's schema.

    The model's labels must all be in the schema (a model trained on other
    labels would write labels the schema forbids). Schema labels the model never
    learnt are allowed: they simply never get predicted (or score 0 in cats).
    """
    if manifest.task != task:
        raise SchemaError(f"model directory {directory} holds a {manifest.task} model, not a {task} model")
    schema.check_labels(manifest.labels, what=f"encoder model directory {directory}")
    if isinstance(schema, TextCatSchema):
        trained_exclusive: Optional[bool] = manifest.schema.get("exclusive")
        if trained_exclusive is not None and trained_exclusive != schema.exclusive:
            kind = "exclusive" if trained_exclusive else "multi-label"
            raise SchemaError(
                f"encoder model directory {directory} was trained as {kind} text classification, but the schema "
                f"says exclusive = {schema.exclusive}; retrain or fix the [schemas.textcat] block"
            )
