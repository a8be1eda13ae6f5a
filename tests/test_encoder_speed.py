"""The encoder's speed levers keep its answers: length bucketing, session options, the tokenization fast path,
static int8, and a student with fewer layers. (The speeds themselves are measured in bench/encoder_throughput.py.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
from tokenizers import Tokenizer

import distil
from distil.components.encoder.alignment import (
    bucketed_batches,
    encode_chunks,
    encode_words,
    load_tokenizer,
    pad_batch,
)
from distil.components.encoder.manifest import ModelDirError
from distil.pipeline.config import ConfigError

from .encoder_support import config_text, minilm_path

REPO = Path(__file__).resolve().parent.parent
# Documents of very different lengths, not in length order: bucketing has something to reorder.
TEXTS = [
    "Maria works for Acme in Oslo .",
    " ".join(["Omar lives in Paris and read about Globex on a trip to Lima ."] * 3),
    "Hooli hired Kenji last year .",
    "",
    "Priya lives in Tokyo .",
    " ".join(["Chen Wei works for Initech in Dublin ."] * 2),
    "Stark is based in Cairo .",
    "Sofia read about Umbrella on a trip to Hanoi . Lukas lives in Berlin .",
    "Bob",
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer(str(minilm_path() / "tokenizer.json"))


def padded_cells(lengths: list[int], batches: list[list[int]]) -> int:
    return sum(len(batch) * max(lengths[i] for i in batch) - sum(lengths[i] for i in batch) for batch in batches)


def test_bucketed_batches_cover_every_input_once_and_cut_padding() -> None:
    lengths = [30, 2, 17, 5, 29, 3, 16, 4, 31, 1, 18, 6]
    owners = [0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]  # some documents have two inputs (long docs in chunks)
    for window in (0, 1, 2, 3, 100):
        batches = bucketed_batches(lengths, 4, window, owners)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        assert all(1 <= len(batch) <= 4 for batch in batches)
    # Off: input order, as unbucketed code would batch.
    assert bucketed_batches(lengths, 4, 0, owners) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    # A window wide enough for every document sorts them all.
    assert [lengths[i] for batch in bucketed_batches(lengths, 4, 100, owners) for i in batch] == sorted(lengths)
    # A window of 3 documents sorts within documents 0-2, 3-5, 6-8, 9: never across a window's edge.
    three = bucketed_batches(lengths, 4, 3, owners)
    assert [[owners[i] // 3 for i in batch] for batch in three] == [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2], [3]]
    assert padded_cells(lengths, bucketed_batches(lengths, 4, 100, owners)) < padded_cells(
        lengths, bucketed_batches(lengths, 4, 0, owners)
    ) / 4
    with pytest.raises(ValueError, match="-1"):
        bucketed_batches(lengths, 4, -1)


def test_single_input_fast_path_encodes_like_the_chunked_path(tokenizer: Tokenizer) -> None:
    documents = [
        [],
        ["Tim", "Cook", "visited", "Berlin"],
        ["@user", "#NewYork", "is", "🔥🔥", " ", "cafés", "naïve", "http://t.co/x"],
        ["unbelievably", "antidisestablishmentarianism", "x"],
    ]
    budget = 64 - tokenizer.num_special_tokens_to_add(False)
    for words in documents:
        fast = encode_words(tokenizer, words, 64)
        full = tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        general = encode_chunks(tokenizer, words, full, budget, 64)
        assert len(fast) == 1
        assert [(p.ids, p.first_token, p.word_start) for p in fast] == [
            (p.ids, p.first_token, p.word_start) for p in general
        ]
    # A document longer than the model still takes the chunked path.
    long_words = ["Maria", "works", "for", "Acme", "."] * 30
    assert len(encode_words(tokenizer, long_words, 32)) > 1


# --- with tiny models trained by the tests ---------------------------------------------------------------


def load(task: str, tmp_path: Path, precision: str = "fp32", **settings: Any) -> spacy.language.Language:
    from .encoder_support import trained

    config = tmp_path / f"{task}-{precision}.cfg"
    config.write_text(config_text(task, trained(task), precision), encoding="utf-8")
    return distil.load(config, {f"components.{task}.{key}": value for key, value in settings.items()})


def entities(doc: Any) -> list[tuple[int, int, str]]:
    return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]


def session_of(nlp: spacy.language.Language, name: str = "ner") -> Any:
    component: Any = nlp.get_pipe(name)
    return component.session


def count_padding(nlp: spacy.language.Language, name: str) -> list[int]:
    """Wrap the component's session so that each model call adds its padded positions to the returned list."""
    session = session_of(nlp, name)
    run = session.run
    padded: list[int] = []

    def counting(feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        mask = feeds["attention_mask"]
        padded.append(int(mask.size - mask.sum()))
        return run(feeds)

    session.run = counting
    return padded


@pytest.mark.slow
def test_bucketed_batches_keep_input_order_and_fp32_answers(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bucketed = load("ner", tmp_path, batch_size=2)  # the default window sorts the whole pipe batch
    plain = load("ner", tmp_path, batch_size=2, bucket_window=0)
    padding = {"bucketed": count_padding(bucketed, "ner"), "plain": count_padding(plain, "ner")}
    got = list(bucketed.pipe(TEXTS, batch_size=64))
    want = list(plain.pipe(TEXTS, batch_size=64))
    assert [doc.text for doc in got] == TEXTS
    assert any(doc.ents for doc in got), "the tiny model finds entities in sentences like its training data"
    for a, b in zip(got, want, strict=True):
        assert entities(a) == entities(b)
        assert [ent._.score for ent in a.ents] == pytest.approx([ent._.score for ent in b.ents], abs=1e-5)
    # Bucketing was on in one run and off in the other: it padded less.
    assert sum(padding["bucketed"]) < sum(padding["plain"])
    # Text classification goes through the same batching.
    cats_bucketed = [doc.cats for doc in load("textcat", tmp_path, batch_size=2).pipe(TEXTS)]
    cats_plain = [doc.cats for doc in load("textcat", tmp_path, batch_size=2, bucket_window=0).pipe(TEXTS)]
    for cats_a, cats_b in zip(cats_bucketed, cats_plain, strict=True):
        assert cats_a == pytest.approx(cats_b, abs=1e-5)


@pytest.mark.slow
def test_session_options_are_config_settings(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import onnxruntime as ort

    tuned = load("ner", tmp_path, graph_optimization="basic", mem_pattern=False, inter_op_threads=2, spin=True)
    options = session_of(tuned).session.get_session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.enable_mem_pattern is False
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL and options.inter_op_num_threads == 2
    default = session_of(load("ner", tmp_path)).session.get_session_options()
    assert default.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert default.enable_mem_pattern is True and default.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    # Options change how the graph runs, not what it answers (fp32).
    assert [entities(d) for d in tuned.pipe(TEXTS)] == [entities(d) for d in load("ner", tmp_path).pipe(TEXTS)]
    bad: list[tuple[str, Any]] = [("graph_optimization", "fastest"), ("inter_op_threads", 0), ("bucket_window", -5)]
    for key, value in bad:
        with pytest.raises((ConfigError, ModelDirError), match=f"{key}.*{value}"):
            load("ner", tmp_path, **{key: value})


def batch_dependence(session: Any, short: list[int], others: list[list[int]]) -> float:
    """Max |logit| difference of ``short`` run alone vs padded among longer inputs, over its real positions."""
    ids, mask = pad_batch([short], session.pad_id)
    alone = session.run({"input_ids": ids, "attention_mask": mask})[0, : len(short)]
    ids, mask = pad_batch([*others, short], session.pad_id)
    among = session.run({"input_ids": ids, "attention_mask": mask})[-1, : len(short)]
    return float(np.abs(alone - among).max())


@pytest.mark.slow
def test_static_int8_answers_do_not_depend_on_the_batch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from distil.components.encoder.manifest import Manifest
    from distil.components.encoder.session import EncoderSession

    from .encoder_support import trained

    model = trained("ner")
    assert (model / "model.int8s.onnx").exists()
    assert Manifest.from_disk(model).onnx_max_abs_diff["int8_static"] < 1.0
    sessions = {precision: EncoderSession(model, precision) for precision in ("fp32", "int8", "int8_static")}
    encode = sessions["fp32"].tokenizer.encode
    short = encode("Bob lives in Oslo .").ids
    others = [encode(text).ids for text in TEXTS[1:3] + TEXTS[5:6]]
    dependence = {name: batch_dependence(session, short, others) for name, session in sessions.items()}
    assert dependence["int8_static"] < 1e-4, dependence
    # The check can see batch dependence: dynamic int8 picks its scales per batch (0.012 on this model).
    assert dependence["int8"] > 1e-3, dependence
    # Through the pipeline: a document alone and among longer documents gets the same entities and scores.
    nlp = load("ner", tmp_path, "int8_static")
    alone = [nlp(text) for text in TEXTS]
    batched = list(nlp.pipe(TEXTS, batch_size=64))
    for a, b in zip(alone, batched, strict=True):
        assert entities(a) == entities(b)
        assert [e._.score for e in a.ents] == pytest.approx([e._.score for e in b.ents], abs=1e-4)
    # Close to fp32: the same tag on nearly every real token position.
    ids, mask = pad_batch([encode(text).ids for text in TEXTS], sessions["fp32"].pad_id)
    feeds = {"input_ids": ids, "attention_mask": mask}
    real = mask.astype(bool)
    same = sessions["int8_static"].run(feeds).argmax(-1)[real] == sessions["fp32"].run(feeds).argmax(-1)[real]
    assert same.mean() >= 0.9


def test_static_int8_keeps_the_feed_forward_outputs_in_fp32_and_percentile_takes_mixed_lengths(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import onnx

    from distil.training.export import (
        CALIBRATION_INPUTS,
        gelu_fed_matmuls,
        load_calibration_inputs,
        quantize_static_int8,
    )

    from .encoder_support import trained

    model = trained("ner")
    fp32 = onnx.load(str(model / "model.onnx")).graph
    layers = json.loads((model / "torch" / "config.json").read_text())["num_hidden_layers"]
    kept = gelu_fed_matmuls(model / "model.onnx")
    # One per transformer layer: the projection after the GELU (outliers a fixed scale cannot cover).
    assert len(kept) == layers and all(name.endswith("output/dense/MatMul") and "attention" not in name for name in kept)
    static = onnx.load(str(model / "model.int8s.onnx")).graph
    weights = {init.name for init in static.initializer}
    dequantized = {node.output[0] for node in static.node if node.op_type == "DequantizeLinear" and node.input[0] in weights}
    matmuls = {node.name: node for node in static.node if node.op_type == "MatMul"}
    # Kept MatMuls read their fp32 weight directly; every other weight MatMul reads a dequantized int8 weight.
    assert all(matmuls[name].input[1] in weights for name in kept)
    quantized = [node for node in matmuls.values() if node.input[1] in dequantized]
    with_weight = [node for node in fp32.node if node.op_type == "MatMul" and node.input[1] in {i.name for i in fp32.initializer}]
    assert len(quantized) == len(with_weight) - len(kept) > 0
    # The calibration batches differ in length; percentile (a histogram) used to fail on that.
    batches = load_calibration_inputs(model / "torch" / CALIBRATION_INPUTS)
    assert len({batch["input_ids"].shape[1] for batch in batches}) > 1
    target = tmp_path / "model.int8s.onnx"
    quantize_static_int8(model / "model.onnx", target, batches, ["input_ids", "attention_mask"], "percentile")
    assert target.stat().st_size > 0


@pytest.mark.slow
def test_static_int8_for_a_model_trained_without_calibration_inputs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from distil.training.export import CALIBRATION_INPUTS, calibrate_from_corpus, export_model_dir

    from .encoder_support import corpus, trained

    old = tmp_path / "old"
    shutil.copytree(trained("ner"), old)
    (old / "torch" / CALIBRATION_INPUTS).unlink()
    diffs = export_model_dir(old, verbose=False)
    assert "int8_static" not in diffs and not (old / "model.int8s.onnx").exists(), "no stale static graph is left"
    config = tmp_path / "old.cfg"
    config.write_text(config_text("ner", old, "int8_static"), encoding="utf-8")
    with pytest.raises((ConfigError, ModelDirError), match="calibrat"):
        distil.load(config)
    train_path, _ = corpus("ner", tmp_path / "data")
    calibrate_from_corpus(old, train_path)
    assert export_model_dir(old, verbose=False)["int8_static"] < 1.0
    assert distil.load(config)("Maria works for Acme in Oslo .").text


@pytest.mark.slow
def test_fewer_layers_make_a_smaller_student(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from distil.components.encoder.manifest import Manifest
    from distil.schemas import SchemaError
    from distil.training.loop import train

    from .encoder_support import corpus, tiny_base, tiny_settings

    train_path, dev_path = corpus("ner", tmp_path / "data", n_train=24, n_dev=8)
    out = tmp_path / "one-layer"
    train("ner", train_path, dev_path, out, base_model=str(tiny_base()), settings=tiny_settings(epochs=1, layers=1),
          progress=False, log=lambda _: None)
    manifest = Manifest.from_disk(out)
    assert manifest.extra["layers"] == 1 and manifest.dev["settings"]["layers"] == 1
    assert json.loads((out / "torch" / "config.json").read_text())["num_hidden_layers"] == 1
    assert json.loads((tiny_base() / "config.json").read_text())["num_hidden_layers"] == 2
    assert manifest.onnx_max_abs_diff["fp32"] < 1e-4  # the exported graph is the one-layer model
    config = tmp_path / "one.cfg"
    config.write_text(config_text("ner", out, "int8"), encoding="utf-8")
    assert distil.load(config)("Maria works for Acme in Oslo .").text
    with pytest.raises(SchemaError, match="got 3"):
        train("ner", train_path, dev_path, tmp_path / "three", base_model=str(tiny_base()),
              settings=tiny_settings(epochs=1, layers=3), progress=False, log=lambda _: None)


def test_the_export_command_names_a_wrong_directory_without_a_traceback(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "distil.training.export", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "is not an encoder model directory" in done.stderr and "distil train" in done.stderr
    assert "Traceback" not in done.stderr
