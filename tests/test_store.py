"""The annotation store: one writer, one job, failed documents retried in place, systemic errors stop the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from distil.corpus import read_docs
from distil.pipeline.annotate import AnnotateReport, AnnotationAborted, annotate, read_records
from distil.pipeline.fingerprint import pipeline_fingerprint
from distil.pipeline.io.texts import read_texts
from distil.pipeline.store import AnnotationStore, StoreError

from .conftest import distil_cli
from .fakeserver import FakeOpenAIServer, Fault, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

BROKEN = {"on": True}


@Language.component("test_store_flaky")
def flaky(doc):  # type: ignore[no-untyped-def]
    """Fails on texts with 'flaky' while BROKEN is on (a transient fault), labels the first token otherwise."""
    if BROKEN["on"] and "flaky" in doc.text:
        raise RuntimeError("transient fault")
    doc.cats = {"seen": 1.0}
    return doc


def _texts(tmp_path: Path, n: int = 12) -> Path:
    lines = [f"text number {i}" + (" flaky" if i % 4 == 1 else "") for i in range(n)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _flaky_nlp() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("test_store_flaky")
    return nlp


def test_retry_failed_replaces_failed_records_in_place_and_keeps_one_per_text(tmp_path: Path) -> None:
    path, out = _texts(tmp_path), tmp_path / "out"
    BROKEN["on"] = True
    first = annotate(_flaky_nlp(), read_texts(path), out, batch_size=5)
    assert first.failures["pipeline_error"] == 3
    order = [r.text for r in read_records(out)]
    # Without --retry-failed a rerun has nothing to do: failed documents are done, with their failure recorded.
    assert annotate(_flaky_nlp(), read_texts(path), out).written == 0
    BROKEN["on"] = False
    again = annotate(_flaky_nlp(), read_texts(path), out, batch_size=5, retry_failed=True)
    assert (again.retried, again.written, again.resumed) == (3, 3, 9)
    records = read_records(out)
    assert [r.text for r in records] == order, "retried records keep their place"
    assert all("failures" not in r.meta and r.cats == {"seen": 1.0} for r in records)
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12, "the store is compacted to one record per text after the run"
    assert json.loads((out / "report.json").read_text())["retried"] == 3
    BROKEN["on"] = True


def test_resuming_with_another_pipeline_names_the_change_unless_new_job(tmp_path: Path) -> None:
    path, out = _texts(tmp_path), tmp_path / "out"
    BROKEN["on"] = False
    nlp = _flaky_nlp()
    annotate(nlp, read_texts(path), out, fingerprint=pipeline_fingerprint(nlp), limit=5)
    other = spacy.blank("en")
    other.add_pipe("sentencizer")
    other.add_pipe("test_store_flaky")
    with pytest.raises(StoreError, match=r"another job.*pipeline changed: was .*test_store_flaky.*--new-job"):
        annotate(other, read_texts(path), out, fingerprint=pipeline_fingerprint(other))
    assert len(read_records(out)) == 5, "the refused run wrote nothing"
    report = annotate(other, read_texts(path), out, fingerprint=pipeline_fingerprint(other), new_job=True)
    assert (report.resumed, report.written) == (5, 7)
    job = json.loads((out / "job.json").read_text())
    assert len(job["jobs"]) == 2 and job["job"] == report.job
    assert {r.meta["job"] for r in read_records(out)} == {job["jobs"][0]["job"], job["jobs"][1]["job"]}
    BROKEN["on"] = True


def test_a_changed_setting_of_a_component_is_named_and_speed_settings_are_not(tmp_path: Path) -> None:
    with FakeOpenAIServer(distil_responder) as server:
        config = llm_config("ner", openai_block(server.base_url))
        nlp = load_config_text(config, tmp_path / "a.cfg")
        faster = load_config_text(config.replace('timeout = 5', 'timeout = 9'), tmp_path / "b.cfg")
        warmer = load_config_text(config.replace('"test-model"', '"other-model"'), tmp_path / "c.cfg")
    base = pipeline_fingerprint(nlp)
    assert pipeline_fingerprint(faster) == base, "a timeout changes no answer"
    changed = pipeline_fingerprint(warmer)
    assert changed["components.ner"] != base["components.ner"]
    assert "prompts.ner" in base and base["prompts.ner"]["template"] == "ner.jinja"


def test_a_second_writer_gets_a_clear_error_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    path, out = _texts(tmp_path), tmp_path / "out"
    config = tmp_path / "rules.cfg"
    config.write_text('[nlp]\nlang = "en"\npipeline = ["sentencizer"]\n\n[components]\n\n'
                      '[components.sentencizer]\nfactory = "sentencizer"\n', encoding="utf-8")
    cmd = [*distil_cli(), "annotate", str(config), str(path), "--output", str(out)]
    with AnnotationStore.open(out, command="a test holding the lock"):
        refused = subprocess.run(cmd, capture_output=True, timeout=120)
        assert refused.returncode == 1
        message = refused.stderr.decode()
        assert "being written by another run" in message and "a test holding the lock" in message
        assert "Traceback" not in message
    assert not (out / "records.jsonl").read_text(), "the refused writer wrote nothing"
    # A holder killed with -9 releases the lock with its process: a stale lock file blocks nothing.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from pathlib import Path; "
         "from distil.pipeline.store import AnnotationStore; "
         f"s = AnnotationStore.open(Path({str(out)!r})); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    holder.kill()
    holder.wait()
    done = subprocess.run(cmd, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert len(read_records(out)) == 12


def test_systemic_llm_errors_stop_the_run_and_keep_what_was_done(tmp_path: Path) -> None:
    path, out = _texts(tmp_path, 40), tmp_path / "out"
    with FakeOpenAIServer(distil_responder) as server:
        nlp = load_config_text(llm_config("ner", openai_block(server.base_url, "concurrency = 1")), tmp_path / "n.cfg")
        # One stray 401 is stored as a failure and the run goes on; then the key is revoked for good.
        server.script(Fault("status", status=401))
        first = annotate(nlp, read_texts(path), out, batch_size=4, limit=8)
        assert first.written == 8 and first.failures["auth_error"] == 1
        server.script(*[Fault("status", status=401)] * 200)
        seen: list[dict[str, object]] = []

        def watch(report: AnnotateReport) -> None:
            seen.append(json.loads((out / "report.json").read_text()))

        with pytest.raises(AnnotationAborted, match=r"5 documents in a row failed .*HTTP 401.*8 document\(s\) stored"):
            annotate(nlp, read_texts(path), out, batch_size=4, on_batch=watch, abort_after=5)
        server.faults.clear()
    assert len(read_records(out)) == 8, "the documents of the failing streak are not stored as done"
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "aborted" and report["stored"] == 8
    assert seen and all(r["state"] == "running" for r in seen[:-1]), "the report is written as the run goes"


def test_the_directory_reads_back_last_record_wins_before_compaction(tmp_path: Path) -> None:
    out = tmp_path / "out"
    nlp = spacy.blank("en")
    with AnnotationStore.open(out) as store:
        from distil.records import DocRecord

        store.append([DocRecord(text="one", meta={"key": "k1"}), DocRecord(text="two", meta={"key": "k2"})])
        store.append([DocRecord(text="one", cats={"x": 1.0}, meta={"key": "k1"})])
        # Readers see one record per key, the last, in first-written order, even before the writer compacts.
        docs = list(read_docs(out, nlp))
        assert [(d.text, d.cats) for d in docs] == [("one", {"x": 1.0}), ("two", {})]
        assert store.compact() and (out / "records.jsonl").read_text().count("\n") == 2


def test_the_store_exports_to_docbin_on_demand(tmp_path: Path) -> None:
    from distil.pipeline.io.convert import convert

    path, out = _texts(tmp_path), tmp_path / "out"
    BROKEN["on"] = False
    annotate(_flaky_nlp(), read_texts(path), out)
    BROKEN["on"] = True
    report = convert(out, tmp_path / "all.spacy")
    assert report.docs == 12
    docs = list(read_docs(tmp_path / "all.spacy", spacy.blank("en")))
    assert [d.text for d in docs] == [r.text for r in read_records(out)] and docs[0].cats == {"seen": 1.0}
    assert docs[0].user_data["distil.meta"]["line"] == 1, "meta (key, source, line) survives the export"


def test_the_local_engine_needs_no_ray_and_engine_ray_says_how_to_get_it(tmp_path: Path, repo: Path) -> None:
    path = _texts(tmp_path)
    config = tmp_path / "rules.cfg"
    config.write_text('[nlp]\nlang = "en"\npipeline = ["sentencizer"]\n\n[components]\n\n'
                      '[components.sentencizer]\nfactory = "sentencizer"\n', encoding="utf-8")
    # Ray made unimportable, as on a machine without the `ray` extra.
    script = ("import sys; sys.modules['ray'] = None; from distil.pipeline.cli import main; "
              "sys.argv = ['distil', *sys.argv[1:]]; main()")
    base = [sys.executable, "-c", script, "annotate", str(config), str(path)]
    local = subprocess.run([*base, "--output", str(tmp_path / "a")], capture_output=True, timeout=120, cwd=repo)
    assert local.returncode == 0, local.stderr.decode()
    assert len(read_records(tmp_path / "a")) == 12
    ray = subprocess.run([*base, "--output", str(tmp_path / "b"), "--engine", "ray"], capture_output=True,
                         timeout=120, cwd=repo)
    assert ray.returncode == 1 and b"pip install 'distil[ray]'" in ray.stderr and b"Traceback" not in ray.stderr


def test_a_mistyped_engine_is_refused_before_the_output_directory_exists(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run([*distil_cli(), "annotate", "configs/all_rules.cfg", str(_texts(tmp_path)), "--output",
                             str(out), "--engine", "rya"], capture_output=True, timeout=120, cwd=repo)
    assert result.returncode == 1 and b"--engine must be one of local, ray, got 'rya'" in result.stderr
    assert not out.exists()
