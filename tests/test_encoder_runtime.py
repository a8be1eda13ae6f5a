"""The encoder components on onnxruntime: loading through configs, the canonical writers, schema checks, saving."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

import distil
from distil.components.encoder.manifest import ModelDirError
from distil.pipeline.config import ConfigError
from distil.pipeline.tasks import pipeline_tasks
from distil.records import from_record, to_record

from .encoder_support import LABELS, config_text, rel_records, trained

pytest.importorskip("torch")  # the models are trained by the tests
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def load(task: str, tmp_path: Path, precision: str = "int8") -> spacy.language.Language:
    config = tmp_path / f"{task}-{precision}.cfg"
    config.write_text(config_text(task, trained(task), precision), encoding="utf-8")
    return distil.load(config)


def test_ner_writes_scored_entities_in_the_schema(tmp_path: Path) -> None:
    nlp = load("ner", tmp_path)
    assert pipeline_tasks(nlp) == {"ner": "ner"}
    docs = list(nlp.pipe(["Maria works for Acme in Oslo .", "", "Omar lives in Paris ."]))
    assert docs[1].ents == ()
    ents = [ent for doc in docs for ent in doc.ents]
    assert ents, "the tiny model finds something in sentences like its training data"
    for ent in ents:
        assert ent.label_ in LABELS["ner"]
        assert isinstance(ent._.score, float) and 0.0 < ent._.score <= 1.0


def test_pipeline_reports_the_weight_files_it_runs(tmp_path: Path) -> None:
    from distil.pipeline.compare import compare_one
    from distil.pipeline.parts import model_files, model_size_bytes

    int8, fp32 = load("ner", tmp_path), load("ner", tmp_path, "fp32")
    files = model_files(int8)["ner"]
    assert [f.name for f in files] == ["model.int8.onnx", "tokenizer.json"]
    assert model_files(fp32)["ner"][0].name == "model.onnx"
    assert 0 < model_size_bytes(int8) < model_size_bytes(fp32), "int8 weights are smaller on disk"
    gold = list(int8.pipe(["Maria works for Acme in Oslo ."]))
    rows, _ = compare_one("student", int8, gold, latency_docs=0)
    assert rows[0].model_mb == pytest.approx(model_size_bytes(int8) / 1e6)


def test_ner_handles_documents_longer_than_the_model(tmp_path: Path) -> None:
    nlp = load("ner", tmp_path)
    text = " ".join(["Maria works for Acme in Oslo ."] * 40)  # far beyond max_length=48 sub-words
    doc = nlp(text)
    assert len(doc) > 200
    assert any(ent.start > 150 for ent in doc.ents), "words past the first chunk are tagged too"


def test_textcat_writes_every_schema_label(tmp_path: Path) -> None:
    nlp = load("textcat", tmp_path)
    doc = nlp("my card was stolen please")
    assert set(doc.cats) == set(LABELS["textcat"])
    assert sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-4)  # exclusive: softmax
    assert max(doc.cats, key=lambda label: doc.cats[label]) == "lost_or_stolen_card"
    assert nlp("x " * 500).cats  # long text: truncated, still classified


def test_rel_predicts_directed_relations_between_given_entities(tmp_path: Path) -> None:
    nlp = load("rel", tmp_path)
    records = rel_records(30, seed=11)
    correct = total = 0
    for record in records:
        doc = nlp(from_record({**record, "relations": []}, nlp))
        predicted = {(r.head_index, r.tail_index, r.label) for r in doc._.relations}
        gold = {(r["head"], r["tail"], r["label"]) for r in record["relations"]}
        for rel in doc._.relations:
            assert rel.label in LABELS["rel"] and isinstance(rel.score, float)
            # only pairs the schema allows: works_for is person -> corporation
            if rel.label == "works_for":
                assert (rel.head.label_, rel.tail.label_) == ("person", "corporation")
        correct += len(predicted & gold)
        total += len(predicted | gold)
    assert correct / total >= 0.8


def test_fp32_and_int8_give_the_same_answers(tmp_path: Path) -> None:
    texts = ["i lost my card", "what is the exchange rate today", "how do i top up please", "rate for yen asap"]
    cats = {}
    for precision in ("fp32", "int8"):
        nlp = load("textcat", tmp_path, precision)
        cats[precision] = [doc.cats for doc in nlp.pipe(texts)]
    assert cats["fp32"] != cats["int8"]  # two different models were run
    for fp32, int8 in zip(cats["fp32"], cats["int8"], strict=True):
        assert int8 == pytest.approx(fp32, abs=0.15)
        if max(fp32.values()) > 0.6:  # a clear fp32 answer survives quantization
            assert max(int8, key=lambda label: int8[label]) == max(fp32, key=lambda label: fp32[label])


def test_model_trained_on_other_labels_is_a_schema_error(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    text = config_text("ner", trained("ner")).replace(
        "corporation = \"Names of companies.\"", ""
    )
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="corporation"):
        distil.load(config)


def test_model_for_another_task_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    config.write_text(config_text("ner", trained("textcat")), encoding="utf-8")
    with pytest.raises(ConfigError, match="textcat model, not a ner model"):
        distil.load(config)


def test_bad_settings_and_missing_model(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    config.write_text(config_text("ner", trained("ner"), precision="int4"), encoding="utf-8")
    with pytest.raises((ConfigError, ModelDirError), match="int4"):
        distil.load(config)
    missing = tmp_path / "nowhere"
    # A missing model directory fails when the pipeline loads, not on every document (issue 17, finding 3).
    with pytest.raises(ConfigError, match=r"nowhere.*distil train"):
        distil.load(tmp_path / "ner.cfg", {"paths.model": str(missing), "components.ner.precision": "fp32"})
    incomplete = tmp_path / "incomplete"
    shutil.copytree(trained("ner"), incomplete)
    (incomplete / "model.int8.onnx").unlink()
    with pytest.raises((ConfigError, ModelDirError), match="distil export"):
        distil.load(tmp_path / "ner.cfg", {"paths.model": str(incomplete), "components.ner.precision": "int8"})


def test_saved_pipeline_carries_its_model(tmp_path: Path) -> None:
    nlp = load("textcat", tmp_path)
    copy = tmp_path / "model-copy"
    shutil.copytree(trained("textcat"), copy)
    nlp = distil.load(tmp_path / "textcat-int8.cfg", {"paths.model": str(copy)})
    before = nlp("my card was stolen").cats
    nlp.to_disk(tmp_path / "saved")
    shutil.rmtree(copy)  # the saved pipeline must not depend on the original directory
    assert (tmp_path / "saved" / "textcat" / "model" / "model.int8.onnx").exists()
    reloaded = spacy.load(tmp_path / "saved")
    assert reloaded("my card was stolen").cats == pytest.approx(before)


def test_shipped_encoder_configs_load_with_a_model_path(tmp_path: Path) -> None:
    nlp = distil.load(REPO / "configs" / "ner_encoder.cfg", {"paths.model": str(trained("ner"))})
    assert nlp.pipe_names == ["ner"]
    assert to_record(nlp("Maria works for Acme in Oslo .")).text
    # The test textcat model has a label that is not a BANKING77 intent: a load-time error naming it.
    with pytest.raises(ConfigError, match="'top_up'"):
        distil.load(REPO / "configs" / "textcat_encoder.cfg", {"paths.model": str(trained("textcat"))})
    nlp = distil.load(
        REPO / "configs" / "all_encoder.cfg",
        {"paths.ner_model": str(trained("ner")), "paths.textcat_model": str(trained("textcat")),
         "paths.rel_model": str(trained("rel")), "schemas.textcat.labels": LABELS["textcat"]},
    )
    assert pipeline_tasks(nlp) == {"ner": "ner", "rel": "rel", "textcat": "textcat"}
    doc = nlp("Maria works for Acme in Oslo . i lost my card")
    assert set(doc.cats) == set(LABELS["textcat"]) and all(isinstance(r.score, float) for r in doc._.relations)


def test_rel_config_rejects_a_model_with_other_relation_labels() -> None:
    with pytest.raises(ConfigError, match="works_for"):
        distil.load(REPO / "configs" / "rel_encoder.cfg", {"paths.model": str(trained("rel"))})


def test_inference_runs_without_torch_or_transformers(tmp_path: Path) -> None:
    """The encoder runtime needs neither torch nor transformers: a process where both are unimportable runs it.

    (spaCy's thinc imports torch whenever it is installed, so "not imported" can
    only be checked by making it unavailable, as on a server without the train extra.)
    """
    configs = {}
    for task in ("ner", "textcat", "rel"):
        path = tmp_path / f"{task}.cfg"
        path.write_text(config_text(task, trained(task)), encoding="utf-8")
        configs[task] = str(path)
    script = f"""
import json, sys

class NoTrainingLibraries:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError("blocked for this test: " + name)
        return None

sys.meta_path.insert(0, NoTrainingLibraries())
import distil
from distil.records import from_record, to_record
configs = {json.dumps(configs)}
out = {{}}
for task, config in configs.items():
    nlp = distil.load(config)
    if task == "rel":
        record = {json.dumps(rel_records(1, 5)[0])}
        record["relations"] = []
        docs = [nlp(from_record(record, nlp))]
    else:
        docs = list(nlp.pipe(["Maria works for Acme in Oslo .", "i lost my card"]))
    out[task] = [to_record(doc).model_dump() for doc in docs]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
print(json.dumps({{"loaded": loaded, "out": out}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert set(report["out"]["textcat"][1]["cats"]) == set(LABELS["textcat"])
