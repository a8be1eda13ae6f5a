"""Relation students: one pass per sentence vs one pass per pair, the tuned no-relation decision, patience stopping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import spacy

from distil.annotations import EntityPrediction
from distil.components.encoder.manifest import MANIFEST, Manifest, ModelDirError
from distil.components.encoder.markers import Mention, encode_entities, mark_entities
from distil.components.encoder.relations import (
    annotate_relations,
    decide,
    relation_candidates,
    score_candidates,
)
from distil.components.encoder.session import EncoderSession
from distil.corpus import read_docs
from distil.schemas import RELSchema

from .encoder_support import _TMP, corpus, minilm_path, tiny_base, tiny_settings, trained

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

_ONE_PASS: dict[str, Path] = {}


def one_pass_model() -> Path:
    """A tiny one-pass relation model trained on the same data as ``trained("rel")`` (once per session)."""
    if "model" not in _ONE_PASS:
        from distil.training.loop import train

        train_path, dev_path = corpus("rel", _TMP / "data")
        output = _TMP / "model-rel-one-pass"
        train("rel", train_path, dev_path, output, base_model=str(tiny_base()),
              settings=tiny_settings(architecture="one_pass"), progress=False, log=lambda _: None)
        _ONE_PASS["model"] = output
    return _ONE_PASS["model"]


def dev_docs(tmp_path: Path) -> tuple[list[Any], RELSchema]:
    nlp = spacy.blank("en")
    _, dev = corpus("rel", tmp_path / "data")
    docs = list(read_docs(dev, nlp))
    return docs, Manifest.from_disk(one_pass_model()).task_schema()  # type: ignore[return-value]


def blank(doc: Any) -> Any:
    from distil.training.examples import blank_copy

    return blank_copy(doc, "rel")


def test_manifest_records_the_architecture() -> None:
    one_pass, pairs = Manifest.from_disk(one_pass_model()), Manifest.from_disk(trained("rel"))
    assert one_pass.architecture == "one_pass" and pairs.architecture == "pairs"
    assert one_pass.inputs == ["input_ids", "attention_mask", "head_row", "head_index", "tail_row", "tail_index"]
    assert pairs.inputs == ["input_ids", "attention_mask", "head_index", "tail_index"]
    assert one_pass.dev["settings"]["architecture"] == "one_pass"
    assert one_pass.dev["score"] >= 0.8  # the tiny fixtures are learnable in one pass too
    assert one_pass.decision["tuned_on"] == "dev" and one_pass.decision["rule"] in ("argmax", "threshold")


def test_one_pass_and_per_pair_models_classify_the_same_candidates(tmp_path: Path) -> None:
    docs, schema = dev_docs(tmp_path)
    sessions = {name: EncoderSession(path, "fp32") for name, path in
                (("one_pass", one_pass_model()), ("pairs", trained("rel")))}
    candidates = {name: relation_candidates(docs, schema, s.manifest.labels) for name, s in sessions.items()}
    assert candidates["one_pass"] == candidates["pairs"] and candidates["pairs"]
    scored = {name: score_candidates(s, docs, candidates[name], batch_size=4) for name, s in sessions.items()}
    for name, probs in scored.items():
        # Every candidate gets probabilities over [no relation, *allowed] from both architectures.
        assert all(p is not None for p in probs), name
        for candidate, p in zip(candidates[name], probs, strict=True):
            assert p is not None and p.shape == (1 + len(candidate.allowed),)
            assert p.sum() == pytest.approx(1.0, abs=1e-5)
    # Both write relations only between candidate pairs, through the same writer.
    allowed = {(c.doc, c.head, c.tail) for c in candidates["pairs"]}
    for session in sessions.values():
        predicted = [blank(doc) for doc in docs]
        annotate_relations(session, predicted, schema, batch_size=4)
        for index, doc in enumerate(predicted):
            for rel in doc._.relations:
                assert (index, rel.head_index, rel.tail_index) in allowed


def test_one_pass_batching_does_not_change_fp32_answers(tmp_path: Path) -> None:
    docs, schema = dev_docs(tmp_path)
    session = EncoderSession(one_pass_model(), "fp32")
    candidates = relation_candidates(docs, schema, session.manifest.labels)
    alone = score_candidates(session, docs, candidates, batch_size=1)
    together = score_candidates(session, docs, candidates, batch_size=64)
    for a, b in zip(alone, together, strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_one_pass_int8_matches_fp32_within_tolerance(tmp_path: Path) -> None:
    model = one_pass_model()
    manifest = Manifest.from_disk(model)
    assert manifest.onnx_max_abs_diff["fp32"] < 1e-4
    assert manifest.onnx_max_abs_diff["int8"] < 1.0
    with np.load(model / "torch" / "check_inputs.npz") as data:
        feeds = {name: data[name] for name in data.files}
    assert feeds["head_row"].shape == feeds["tail_index"].shape and feeds["head_row"].size > feeds["input_ids"].shape[0]
    outputs = {}
    for precision, filename in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        session = ort.InferenceSession(str(model / filename), providers=["CPUExecutionProvider"])
        outputs[precision] = session.run(None, feeds)[0]
    assert outputs["fp32"].shape == (feeds["head_row"].size, len(manifest.classes))
    assert 0 < np.abs(outputs["fp32"] - outputs["int8"]).max() < 1.0
    assert (outputs["fp32"].argmax(-1) == outputs["int8"].argmax(-1)).mean() >= 0.8
    # And through the component code: int8 relations mostly agree with fp32 ones.
    docs, schema = dev_docs(tmp_path)
    found = {}
    for precision in ("fp32", "int8"):
        predicted = [blank(doc) for doc in docs]
        annotate_relations(EncoderSession(model, precision), predicted, schema, batch_size=8)
        found[precision] = {(i, r.head_index, r.tail_index, r.label) for i, d in enumerate(predicted) for r in d._.relations}
    assert len(found["fp32"] & found["int8"]) >= 0.8 * max(1, len(found["fp32"]))


def test_long_documents_are_read_in_windows() -> None:
    from distil.components.encoder.alignment import load_tokenizer

    tokenizer = load_tokenizer(str(minilm_path() / "tokenizer.json"))
    text = "Alice works for Acme . " + "It rained all day in the small town . " * 12 + "Bob lives in Paris ."
    mentions = [Mention(0, 5, "person"), Mention(16, 20, "corporation")]
    start = text.index("Bob")
    mentions += [Mention(start, start + 3, "person"), Mention(text.index("Paris"), text.index("Paris") + 5, "location")]
    marked, positions = mark_entities(text, mentions)
    assert [marked[p : p + 5] for p in positions] == ["@ * p", "@ * c", "@ * p", "@ * l"]
    encoded = encode_entities(tokenizer, text, mentions, max_length=32)
    assert len(encoded.windows) > 2 and all(len(window) <= 32 for window in encoded.windows)
    for row, position in zip(encoded.rows, encoded.positions, strict=True):
        assert row is not None and tokenizer.id_to_token(encoded.windows[row][position]) == "@"
    assert encode_entities(tokenizer, text, mentions, max_length=512).rows == [0, 0, 0, 0]


def with_decision(tmp_path: Path, model: Path, decision: dict[str, Any]) -> Path:
    copy = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(model, copy, ignore=shutil.ignore_patterns("torch"))
    data = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    data["decision"] = decision
    (copy / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    return copy


@pytest.mark.parametrize("architecture", ["one_pass", "pairs"])
def test_a_threshold_in_the_manifest_changes_predictions_as_documented(tmp_path: Path, architecture: str) -> None:
    model = one_pass_model() if architecture == "one_pass" else trained("rel")
    docs, schema = dev_docs(tmp_path)

    def relations(decision: dict[str, Any]) -> set[tuple[int, int, int, str]]:
        session = EncoderSession(with_decision(tmp_path, model, decision), "fp32")
        predicted = [blank(doc) for doc in docs]
        annotate_relations(session, predicted, schema, batch_size=8)
        return {(i, r.head_index, r.tail_index, r.label) for i, d in enumerate(predicted) for r in d._.relations}

    n_candidates = len(relation_candidates(docs, schema, schema.label_names))
    # Threshold 0: every candidate pair gets its most probable relation label; above 1: none does.
    everything = relations({"rule": "threshold", "threshold": 0.0})
    assert len(everything) == n_candidates
    assert relations({"rule": "threshold", "threshold": 1.01}) == set()
    argmax = relations({"rule": "argmax"})
    assert argmax <= everything and len(argmax) < n_candidates
    # A per-label threshold overrides the global one for its label only.
    no_works_for = relations({"rule": "threshold", "threshold": 0.0, "per_label": {"works_for": 1.01}})
    assert no_works_for == {r for r in everything if r[3] != "works_for"}
    # An unknown rule is a clear error when the model directory is loaded.
    with pytest.raises(ModelDirError, match="'vote'"):
        EncoderSession(with_decision(tmp_path, model, {"rule": "vote"}), "fp32")


def test_decide_rules() -> None:
    probs = np.array([0.5, 0.3, 0.2])  # no relation, a, b
    assert decide({}, ("a", "b"), probs) is None  # argmax: no relation wins
    assert decide({"rule": "threshold", "threshold": 0.25}, ("a", "b"), probs) == ("a", pytest.approx(0.3))
    assert decide({"rule": "threshold", "threshold": 0.25, "per_label": {"a": 0.4}}, ("a", "b"), probs) is None
    assert decide({"rule": "argmax"}, ("a", "b"), np.array([0.2, 0.3, 0.5])) == ("b", pytest.approx(0.5))


def test_tune_decision_picks_the_threshold_that_maximises_dev_f1() -> None:
    from distil.training.thresholds import ScoredCandidate, tune_decision

    def candidate(p_rel: float, gold: bool) -> ScoredCandidate:
        # The model prefers "no relation" (0.6 of the mass when p_rel is small) but ranks true pairs higher.
        return ScoredCandidate(("a",), np.array([1 - p_rel, p_rel]), frozenset({"a"} if gold else set()))

    # Argmax (p > 0.5) finds one of four relations; a threshold near 0.3 finds all four for one false positive.
    scored = [candidate(0.6, True), candidate(0.4, True), candidate(0.35, True), candidate(0.32, True),
              candidate(0.31, False), candidate(0.1, False), candidate(0.05, False)]
    decision = tune_decision(scored, n_gold=4)
    assert decision["rule"] == "threshold"
    assert 0.31 < decision["threshold"] < 0.32
    assert decision["dev_micro_f"]["argmax"] == pytest.approx(2 / 5)
    assert decision["dev_micro_f"]["threshold"] == pytest.approx(1.0)
    # When argmax is already best, the manifest keeps argmax.
    assert tune_decision([candidate(0.9, True), candidate(0.1, False)], n_gold=1)["rule"] == "argmax"


def test_training_stops_when_dev_stops_improving(tmp_path: Path) -> None:
    from distil.training.loop import TrainSettings, train

    # --epochs is a maximum: the default run stops on patience, long before it.
    assert TrainSettings().epochs >= 20 and TrainSettings().patience >= 2 and TrainSettings().max_minutes is not None
    train_path, dev_path = corpus("textcat", tmp_path / "data", n_train=24, n_dev=8)
    lines: list[str] = []
    result = train("textcat", train_path, dev_path, tmp_path / "m", base_model=str(tiny_base()),
                   settings=tiny_settings(epochs=40, patience=2), progress=False, log=lines.append)
    assert any("early stopping: no dev improvement for 2 epoch(s)" in line for line in lines), lines
    epochs_run = sum(line.startswith("epoch ") for line in lines)
    assert epochs_run == result.best_epoch + 2 < 40


def test_one_pass_reads_every_pair_of_a_long_document(tmp_path: Path) -> None:
    # Ten fixture sentences in one Doc: longer than the tiny models' 48 sub-words. The one-pass model reads
    # every candidate in windows; the per-pair model skips the pairs whose two markers cannot fit together.
    from distil.annotations import write_entities

    docs, schema = dev_docs(tmp_path)
    nlp = spacy.blank("en")
    text, entities = "", []
    for doc in docs[:10]:
        offset = len(text)
        entities += [EntityPrediction(offset + e.start_char, offset + e.end_char, e.label_) for e in doc.ents]
        text += doc.text + " "
    long_doc = nlp.make_doc(text.strip())
    write_entities(long_doc, entities)
    assert len(long_doc.ents) == len(entities)
    one_pass = EncoderSession(one_pass_model(), "fp32")
    candidates = relation_candidates([long_doc], schema, one_pass.manifest.labels)
    assert all(p is not None for p in score_candidates(one_pass, [long_doc], candidates, batch_size=4))
    pairs = score_candidates(EncoderSession(trained("rel"), "fp32"), [long_doc], candidates, batch_size=4)
    assert any(p is None for p in pairs) and any(p is not None for p in pairs)
