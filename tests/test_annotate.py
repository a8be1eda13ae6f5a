"""``distil annotate``: resumable after kill -9, duplicates once, read back through the store's one read path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import spacy

from distil.corpus import read_docs
from distil.pipeline.annotate import annotate, read_records
from distil.pipeline.io.texts import read_texts

from .conftest import distil_cli

SLOW_COMPONENT = '''
import time
from spacy.language import Language
from distil.annotations import EntityPrediction, write_entities

@Language.component("test_slow_tagger")
def slow_tagger(doc):
    time.sleep(0.02)
    if "crash" in doc.text:
        raise RuntimeError("this document breaks the component")
    write_entities(doc, [EntityPrediction(0, len(doc[0].text), "FIRST", 0.5)])
    return doc
'''

CONFIG = """
[nlp]
lang = "en"
pipeline = ["tagger"]

[components]

[components.tagger]
factory = "test_slow_tagger"
"""


def _setup(tmp_path: Path, n: int) -> tuple[Path, Path, list[str]]:
    (tmp_path / "slow.py").write_text(SLOW_COMPONENT, encoding="utf-8")
    config = tmp_path / "slow.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    texts = [f"document number {i} here" for i in range(n)]
    lines = [*texts, texts[3], texts[10], "crash this one"]  # two duplicates and a failing doc
    data = tmp_path / "input.txt"
    data.write_bytes("\n".join(lines).encode("utf-8") + b"\n\xff broken line\n")
    return config, data, [*texts, "crash this one"]


def _check_output(out: Path, expected: list[str]) -> None:
    records = read_records(out)
    texts = [r.text for r in records]
    assert sorted(texts) == sorted(expected), "every distinct input exactly once"
    assert len(texts) == len(set(texts))
    for record in records:
        if record.text == "crash this one":
            assert record.meta["failures"][0]["kind"] == "pipeline_error"
        else:
            assert [e.text for e in record.entities] == ["document"]
    nlp = spacy.blank("en")
    assert [doc.text for doc in read_docs(out, nlp)] == texts, "the directory reads as the records, once, in order"
    assert not (out / "docs").exists(), "no DocBin copy kept beside the records"


def test_annotate_resumes_after_kill_9(tmp_path: Path) -> None:
    config, data, expected = _setup(tmp_path, 150)
    out = tmp_path / "out"
    cmd = [*distil_cli(), "annotate", str(config), str(data), "--output", str(out), "--batch-size", "4",
           "--code", str(tmp_path / "slow.py")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    records = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and records.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = records.read_bytes().count(b"\n")
    assert 20 <= done_before < len(expected), "killed mid-run"
    # Simulate a kill in the middle of an append: a torn last line.
    with records.open("ab") as handle:
        handle.write(b'{"text": "torn')
    result = subprocess.run(cmd, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert f"{done_before} already done" in err
    assert "2 duplicate(s), 1 skipped" in err and "invalid UTF-8" in err and "pipeline_error=1" in err
    _check_output(out, expected)
    report = json.loads((out / "report.json").read_text())
    assert report["written"] == len(expected) - done_before

    # A third run has nothing left to do and changes nothing.
    again = subprocess.run(cmd, capture_output=True, timeout=300)
    assert again.returncode == 0 and "0 new document(s)" in again.stderr.decode()
    _check_output(out, expected)


def test_legacy_docbin_shards_are_dropped_and_the_records_kept(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    texts = [f"text {i}" for i in range(10)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    annotate(nlp, read_texts(path), out, batch_size=3)
    # A directory of the first format kept DocBin shards that nothing read.
    (out / "docs").mkdir()
    (out / "docs" / "shard-00000000-00000003.spacy").write_bytes(b"old shard")
    report = annotate(nlp, read_texts(path), out, batch_size=3)
    assert report.written == 0 and report.resumed == 10
    assert not (out / "docs").exists()
    assert [doc.text for doc in read_docs(out, nlp)] == texts


def test_csv_input_uses_text_column_and_keeps_other_columns(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    path = tmp_path / "in.csv"
    path.write_text('id,text\n1,"Hello, world"\n2,\n3,Second row\n', encoding="utf-8")
    out = tmp_path / "out"
    report = annotate(nlp, read_texts(path), out)
    assert report.written == 2 and report.skipped["empty text"] == 1
    records = read_records(out)
    assert [(r.text, r.meta["id"], r.meta["line"]) for r in records] == [("Hello, world", "1", 2), ("Second row", "3", 4)]
