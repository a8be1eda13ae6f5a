"""An exported encoder loaded for inference: onnxruntime session, tokenizer and manifest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Union

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


# Names of onnxruntime's graph optimization levels, as a config sets them.
GRAPH_OPTIMIZATIONS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionSettings:
    """The onnxruntime session options a component config sets (see docs/encoder.md, "Speed settings").

    - ``threads``: the intra-op thread pool (the cores one matrix product uses).
    - ``inter_op_threads``: 1 runs the graph's nodes one after another (the
      default: an encoder is a chain, parallel branches buy little and cost
      cores); more runs independent nodes in parallel (onnxruntime's parallel
      execution mode) on that many threads.
    - ``graph_optimization``: ``disable``, ``basic``, ``extended`` or ``all``
      (the default: every fusion onnxruntime knows, e.g. attention and GELU).
    - ``mem_pattern``: onnxruntime plans its buffers from the shapes of the
      previous run; with batches of varying length the plan is often redone,
      so turning it off may cost less (measured per model, see benchmarks).
    - ``spin``: idle worker threads spin waiting for work instead of sleeping.
      Off by default: on a shared or oversubscribed CPU spinning steals the
      cores the other threads need; on an idle box it may save wake-up time.
    """

    threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    mem_pattern: bool = True
    spin: bool = False

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ModelDirError(f"threads must be at least 1, got {self.threads}")
        if self.inter_op_threads < 1:
            raise ModelDirError(f"inter_op_threads must be at least 1, got {self.inter_op_threads}")
        if self.graph_optimization not in GRAPH_OPTIMIZATIONS:
            raise ModelDirError(
                f"graph_optimization must be one of {', '.join(GRAPH_OPTIMIZATIONS)}, got {self.graph_optimization!r}"
            )

    def options(self) -> ort.SessionOptions:
        """These settings as onnxruntime ``SessionOptions``."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL if self.inter_op_threads > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        options.graph_optimization_level = GRAPH_OPTIMIZATIONS[self.graph_optimization]
        options.enable_mem_pattern = self.mem_pattern
        spin = "1" if self.spin else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        return options


class EncoderSession:
    """The model of one model directory at one precision, ready to run.

    ``threads`` bounds onnxruntime's intra-op thread pool; ``settings``, when
    given, sets every session option (:class:`SessionSettings`, whose
    ``threads`` then wins over the ``threads`` argument).
    """

    def __init__(
        self,
        directory: Union[str, Path],
        precision: str = "int8",
        threads: int = 1,
        settings: Optional[SessionSettings] = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelDirError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        settings = settings if settings is not None else SessionSettings(threads=threads)
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ModelDirError(
                f"encoder model directory not found: {self.directory}; train one with "
                f"`distil train TASK TRAIN DEV --output DIR` and pass it as paths.model"
            )
        self.manifest = Manifest.from_disk(self.directory)
        self.precision = precision
        self.settings = settings
        tokenizer_path = self.directory / TOKENIZER
        if not tokenizer_path.exists():
            raise ModelDirError(f"{tokenizer_path} is missing; the model directory is incomplete")
        self.tokenizer: Tokenizer = load_tokenizer(str(tokenizer_path))
        self.model_file = onnx_path(self.directory, precision)
        self.tokenizer_file = tokenizer_path
        self.session = ort.InferenceSession(str(self.model_file), settings.options(), providers=["CPUExecutionProvider"])
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
