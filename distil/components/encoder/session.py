"""An exported encoder loaded for inference: onnxruntime session, tokenizer and manifest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, Union

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from .alignment import load_tokenizer
from .manifest import PRECISIONS, TOKENIZER, Manifest, ModelDirError, onnx_path


class Runner(Protocol):
    """What the annotate functions need from a model: onnxruntime here, torch while training."""

    manifest: Manifest
    tokenizer: Tokenizer
    pad_id: int

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The logits of one padded batch."""
        ...


class EncoderSession:
    """The model of one model directory at one precision, ready to run.

    ``threads`` bounds onnxruntime's intra-op thread pool (inter-op is 1: the
    graph is a chain, parallel branches buy nothing and cost cores).
    """

    def __init__(self, directory: Union[str, Path], precision: str = "int8", threads: int = 1) -> None:
        if precision not in PRECISIONS:
            raise ModelDirError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if threads < 1:
            raise ModelDirError(f"threads must be at least 1, got {threads}")
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ModelDirError(
                f"encoder model directory not found: {self.directory}; train one with "
                f"`distil train TASK TRAIN DEV --output DIR` and pass it as paths.model"
            )
        self.manifest = Manifest.from_disk(self.directory)
        self.precision = precision
        tokenizer_path = self.directory / TOKENIZER
        if not tokenizer_path.exists():
            raise ModelDirError(f"{tokenizer_path} is missing; the model directory is incomplete")
        self.tokenizer: Tokenizer = load_tokenizer(str(tokenizer_path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: on a shared or oversubscribed CPU spinning steals the
        # cores the other threads need; with length-sorted batches the wake-up cost is negligible.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.model_file = onnx_path(self.directory, precision)
        self.tokenizer_file = tokenizer_path
        self.session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        pad = self.tokenizer.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The logits for one batch; ``feeds`` may hold more inputs than the graph takes."""
        inputs = {name: feeds[name] for name in self.input_names}
        return np.asarray(self.session.run(None, inputs)[0], dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return 1.0 / (1.0 + np.exp(-logits))  # type: ignore[no-any-return]
