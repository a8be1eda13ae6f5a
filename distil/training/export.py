"""Export a trained model directory to ONNX fp32, dynamic int8 and static int8, and check each against torch.

Dynamic int8 (``model.int8.onnx``) uses onnxruntime's dynamic quantization with
per-channel weights: a probe found per-tensor int8 costs several points of
fidelity on MiniLM. Its activation scales are computed per call, that is per
batch, so a document's answer depends a little on its batchmates.

Static int8 (``model.int8s.onnx``) quantizes the same MatMuls (per-channel
int8 weights) in QDQ format with activation scales fixed at export time,
calibrated on a seeded sample of training inputs that ``distil train`` saves
as ``torch/calibration_inputs.npz``: a document's answer no longer depends on
the batch. The MatMul after each GELU (the feed-forward output projection)
stays fp32: its input has outliers a fixed per-tensor scale cannot cover, and
quantizing it cost 3.8 entity F points on WNUT-17 (40.5 against fp32's 44.3;
44.1 with it kept in fp32, docs/benchmarks.md). A checkpoint without
calibration inputs (trained before they were saved) gets no static graph;
``python -m distil.training.export DIR --calibrate TRAIN`` writes them from a
training corpus and exports again.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from ..components.encoder.manifest import ONNX_FILES, TORCH_DIR, Manifest, ModelDirError
from .modeling import LogitsModel, input_names, load_model

CHECK_INPUTS = "check_inputs.npz"
CALIBRATION_INPUTS = "calibration_inputs.npz"
# How many training inputs static int8 calibrates on, and in batches of how many (length-sorted, as at run time).
CALIBRATION_SIZE = 256
CALIBRATION_BATCH = 16
CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
OPSET = 17


__all__ = [
    "CALIBRATION_INPUTS",
    "CHECK_INPUTS",
    "calibrate_from_corpus",
    "export_model_dir",
    "export_onnx",
    "gelu_fed_matmuls",
    "input_names",
    "load_calibration_inputs",
    "max_abs_diff",
    "quantize",
    "quantize_static_int8",
    "save_calibration_inputs",
]


def export_onnx(model: LogitsModel, feeds: dict[str, np.ndarray], path: Path) -> None:
    """Trace ``model`` on ``feeds`` into an ONNX graph with dynamic batch and sequence axes."""
    names = model.input_names
    args = tuple(torch.from_numpy(feeds[name]) for name in names)
    dynamic: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    if model.task == "rel":
        # Per-pair inputs: one row per input; one-pass: one row per candidate pair, however many windows.
        axis = "pairs" if model.architecture == "one_pass" else "batch"
        dynamic.update({name: {0: axis} for name in names[2:]})
        dynamic["logits"] = {0: axis}
    elif model.task == "ner":
        dynamic["logits"] = {0: "batch", 1: "sequence"}
    else:
        dynamic["logits"] = {0: "batch"}
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter needs no onnxscript and handles these encoders well.
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def quantize(fp32: Path, int8: Path) -> None:
    """Dynamic int8 quantization with per-channel weights."""
    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer logs advice on every call
    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)


def save_calibration_inputs(path: Path, batches: Sequence[Mapping[str, np.ndarray]]) -> None:
    """Write padded model input batches (name -> array per batch) as one ``.npz``, keys ``b0000__input_ids``..."""
    arrays = {f"b{index:04d}__{name}": array for index, batch in enumerate(batches) for name, array in batch.items()}
    np.savez(path, **arrays)  # type: ignore[arg-type]


def load_calibration_inputs(path: Path) -> list[dict[str, np.ndarray]]:
    """The batches written by :func:`save_calibration_inputs`, in order."""
    batches: dict[int, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            index, name = key.split("__", 1)
            batches.setdefault(int(index[1:]), {})[name] = data[key]
    return [batches[index] for index in sorted(batches)]


class _Batches(CalibrationDataReader):  # type: ignore[misc]
    """onnxruntime's calibration reader over a list of feed batches (only the graph's inputs are passed)."""

    def __init__(self, batches: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter([{name: batch[name] for name in names} for batch in batches])

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        return next(self._batches, None)


# Activations whose range a static per-tensor scale cannot cover: the MatMul reading one is left in fp32.
_OUTLIER_SOURCES = {"Erf", "Gelu", "FastGelu", "BiasGelu", "Tanh"}


def gelu_fed_matmuls(path: Path, depth: int = 4) -> list[str]:
    """Names of the MatMuls whose activation input comes out of a GELU (``Erf``/``Gelu``/``Tanh`` within ``depth`` nodes).

    In a BERT-style encoder these are the feed-forward output projections.
    Found from the graph rather than from node names, so any base model's
    export is covered.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {output: node for node in graph.node for output in node.output}

    def reaches_gelu(tensor: str, left: int) -> bool:
        node = producer.get(tensor)
        if node is None or left == 0:
            return False
        if node.op_type in _OUTLIER_SOURCES:
            return True
        return node.op_type not in ("MatMul", "Gemm") and any(reaches_gelu(i, left - 1) for i in node.input)

    return [node.name for node in graph.node if node.op_type == "MatMul" and reaches_gelu(node.input[0], depth)]


def _same_shape(batches: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The rows of ``batches`` one per batch, every (row, length) input padded to the longest length.

    onnxruntime's histogram calibrators (percentile) stack the outputs of all
    batches into one array and fail on batches of different shapes (lengths,
    or a short last batch). The padding value of each input is read from a
    padded position of the batches themselves (the tokenizer's pad id; 0 for
    the attention mask).
    """
    longest = max(array.shape[1] for batch in batches for array in batch.values() if array.ndim == 2)
    fill: dict[str, int] = {}
    for batch in batches:
        mask = batch.get("attention_mask")
        if mask is None or mask.all():
            continue
        for name, array in batch.items():
            if array.ndim == 2 and array.shape == mask.shape:
                fill.setdefault(name, int(array[mask == 0][0]))
    rows = []
    for batch in batches:
        size = next(iter(batch.values())).shape[0]
        for row in range(size):
            rows.append({
                name: np.pad(array[row : row + 1], ((0, 0), (0, longest - array.shape[1])), constant_values=fill.get(name, 0))
                if array.ndim == 2 else array[row : row + 1]
                for name, array in batch.items()
            })
    return rows


def quantize_static_int8(
    fp32: Path, target: Path, batches: Sequence[Mapping[str, np.ndarray]], names: Sequence[str], method: str = "minmax"
) -> None:
    """Static int8 in QDQ format: per-channel int8 weights, uint8 activations with scales calibrated on ``batches``.

    Only MatMuls with a constant weight are quantized (the ones dynamic int8
    quantizes too), less the ones fed by a GELU (:func:`gelu_fed_matmuls`):
    the attention-score products and the additive attention mask stay in
    fp32, where a calibrated scale would have to span the mask's huge
    negative values. uint8 activations with int8 weights (U8S8) are
    onnxruntime's recommended pair on x86 CPUs. ``method`` is ``minmax`` (the
    activation range seen in calibration) or ``percentile`` (clips rare
    outliers; slower to calibrate; measured no better on WNUT-17).
    """
    if method not in CALIBRATION_METHODS:
        raise ModelDirError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not batches:
        raise ModelDirError("static int8 needs calibration inputs, got none")
    if method != "minmax":
        batches = _same_shape(batches)
    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer logs advice on every call
    quantize_static(
        str(fp32),
        str(target),
        _Batches(batches, names),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=False,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CALIBRATION_METHODS[method],
        nodes_to_exclude=gelu_fed_matmuls(fp32),
        extra_options={"MatMulConstBOnly": True},
    )


def max_abs_diff(model: LogitsModel, path: Path, feeds: dict[str, np.ndarray]) -> float:
    """The largest absolute difference between torch and ONNX logits over real (unpadded) positions."""
    names = model.input_names
    with torch.no_grad():
        expected = model(*(torch.from_numpy(feeds[name]) for name in names)).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {name: feeds[name] for name in names})[0]
    diff = np.abs(expected - got)
    if model.task == "ner":
        diff = diff[feeds["attention_mask"].astype(bool)]
    return float(diff.max()) if diff.size else 0.0


def export_model_dir(directory: Union[str, Path], verbose: bool = True, calibration_method: str = "minmax") -> dict[str, float]:
    """(Re-)export the checkpoint in ``directory/torch`` to the ONNX files and update the manifest.

    Writes fp32 and dynamic int8 always, and static int8 when the checkpoint
    has calibration inputs (a stale static graph is removed otherwise, so it
    never disagrees with ``model.onnx``). Returns the max absolute logit
    difference of each precision against torch (also recorded in the
    manifest and printed when ``verbose``).
    """
    directory = Path(directory)
    manifest = Manifest.from_disk(directory)
    checkpoint = directory / TORCH_DIR
    if not checkpoint.is_dir():
        raise ModelDirError(f"{checkpoint} is missing: {directory} has no torch checkpoint to export")
    check_path = checkpoint / CHECK_INPUTS
    if not check_path.exists():
        raise ModelDirError(f"{check_path} is missing: no sample inputs to trace and check the export with")
    with np.load(check_path) as data:
        feeds = {name: data[name] for name in data.files}
    model = load_model(manifest.task, checkpoint)
    model.eval()
    fp32, int8 = directory / ONNX_FILES["fp32"], directory / ONNX_FILES["int8"]
    export_onnx(model, feeds, fp32)
    quantize(fp32, int8)
    diffs = {"fp32": max_abs_diff(model, fp32, feeds), "int8": max_abs_diff(model, int8, feeds)}
    static = directory / ONNX_FILES["int8_static"]
    calibration = checkpoint / CALIBRATION_INPUTS
    if calibration.exists():
        try:
            quantize_static_int8(fp32, static, load_calibration_inputs(calibration), model.input_names, calibration_method)
            diffs["int8_static"] = max_abs_diff(model, static, feeds)
        except Exception as err:  # an extra graph: its failure must not cost the trained model and its other graphs
            static.unlink(missing_ok=True)
            print(f"warning: static int8 not written ({type(err).__name__}: {err}); fp32 and int8 are", file=sys.stderr)
    elif static.exists():
        static.unlink()
    manifest.onnx_max_abs_diff = diffs
    manifest.inputs = model.input_names
    manifest.to_disk(directory)
    if verbose:
        if "int8_static" in diffs:
            static_note = f", int8_static {diffs['int8_static']:.2e}"
        elif calibration.exists():
            static_note = " (no static int8: its export failed, see the warning above)"
        else:
            static_note = f" (no static int8: {calibration} is missing)"
        print(f"ONNX vs torch max |logit diff| on {feeds['input_ids'].shape[0]} dev inputs: "
              f"fp32 {diffs['fp32']:.2e}, int8 {diffs['int8']:.2e}{static_note}")
    return diffs


def calibrate_from_corpus(directory: Union[str, Path], corpus: Union[str, Path], seed: int = 0) -> Path:
    """Write ``torch/calibration_inputs.npz`` for a model directory from an annotated training corpus.

    For model directories trained before the trainer saved calibration inputs:
    the same seeded sample of :data:`CALIBRATION_SIZE` training inputs the
    trainer would have saved, built with the model's own tokenizer and length.
    """
    import spacy

    from ..components.encoder.alignment import load_tokenizer
    from ..components.encoder.manifest import TOKENIZER
    from ..corpus import read_docs
    from .loop import _examples, calibration_batches

    directory = Path(directory)
    manifest = Manifest.from_disk(directory)
    tokenizer = load_tokenizer(str(directory / TOKENIZER))
    docs = list(read_docs(corpus, spacy.blank("en")))
    examples = _examples(manifest.task, docs, tokenizer, manifest.task_schema(), manifest.classes, manifest.max_length,
                         manifest.architecture)
    if not examples:
        raise ModelDirError(f"{corpus}: no {manifest.task} training inputs to calibrate on")
    pad = tokenizer.token_to_id("[PAD]")
    exclusive = bool(manifest.schema.get("exclusive", True))
    path = directory / TORCH_DIR / CALIBRATION_INPUTS
    save_calibration_inputs(path, calibration_batches(manifest.task, examples, 0 if pad is None else pad, exclusive, seed))
    return path


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m distil.training.export DIR [--calibrate TRAIN]``: export again, calibrating static int8 first if asked."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directory", type=Path, help="A model directory written by distil train.")
    parser.add_argument("--calibrate", type=Path, help="Annotated training corpus to take calibration inputs from.")
    parser.add_argument("--method", choices=sorted(CALIBRATION_METHODS), default="minmax", help="Calibration method.")
    args = parser.parse_args(argv)
    try:
        if args.calibrate is not None:
            print(f"calibration inputs: {calibrate_from_corpus(args.directory, args.calibrate)}")
        export_model_dir(args.directory, calibration_method=args.method)
    except ModelDirError as err:  # a wrong directory or corpus: the message says what to do, a traceback would not
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
