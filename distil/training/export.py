"""Export a trained model directory to ONNX fp32 and dynamic int8, and check both against torch.

Int8 uses onnxruntime's dynamic quantization with per-channel weights: a probe
found per-tensor int8 costs several points of fidelity on MiniLM.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from ..components.encoder.manifest import ONNX_FILES, TORCH_DIR, Manifest, ModelDirError
from .modeling import LogitsModel, input_names, load_model

CHECK_INPUTS = "check_inputs.npz"
OPSET = 17


__all__ = ["CHECK_INPUTS", "export_model_dir", "export_onnx", "input_names", "max_abs_diff", "quantize"]


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


def export_model_dir(directory: Union[str, Path], verbose: bool = True) -> dict[str, float]:
    """(Re-)export the checkpoint in ``directory/torch`` to both ONNX files and update the manifest.

    Returns the max absolute logit difference of each precision against torch
    (also recorded in the manifest and printed when ``verbose``).
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
    manifest.onnx_max_abs_diff = diffs
    manifest.inputs = model.input_names
    manifest.to_disk(directory)
    if verbose:
        print(f"ONNX vs torch max |logit diff| on {feeds['input_ids'].shape[0]} dev inputs: "
              f"fp32 {diffs['fp32']:.2e}, int8 {diffs['int8']:.2e}")
    return diffs
