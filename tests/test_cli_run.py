"""``distil run``, ``distil schema`` and ``distil.load`` through real processes and files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import spacy

import distil
from distil.pipeline.config import ConfigError
from distil.records import DocRecord

from .conftest import distil_cli

CONFIG = """
[paths]
org = "Apple"

[nlp]
lang = "en"
pipeline = ["ner"]

[schemas]

[schemas.ner]
@misc = "distil.NERSchema.v1"
labels = {"ORG": "Companies", "PERSON": "People"}

[components]

[components.ner]
factory = "distil_ner_rules"
schema = ${schemas.ner}
patterns = [{"label": "ORG", "pattern": "${paths.org}"}, {"label": "PERSON", "pattern": [{"LOWER": "tim"}, {"LOWER": "cook"}]}]
"""


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ner.cfg"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*distil_cli(), *args], input=stdin, capture_output=True, timeout=120)


def test_load_and_overrides(config: Path) -> None:
    nlp = distil.load(config)
    assert [(e.text, e.label_) for e in nlp("Apple hired Tim Cook.").ents] == [("Apple", "ORG"), ("Tim Cook", "PERSON")]
    nlp2 = distil.load(config, overrides={"paths.org": "Google"})
    assert [e.text for e in nlp2("Apple and Google").ents] == ["Google"]


def test_misspelt_override_is_refused_and_arguments_pass(config: Path) -> None:
    with pytest.raises(ConfigError, match=r"--paths\.orgs: \[paths\] has no setting 'orgs' \(it has: org\)"):
        distil.load(config, overrides={"paths.orgs": "Google"})
    # settings spaCy fills in, and arguments of a component block, are not in the file but are fine
    nlp = distil.load(config, overrides={"nlp.batch_size": 7})
    assert nlp.batch_size == 7
    with pytest.raises(ConfigError, match=r"has no argument 'nope'.*it takes: schema"):
        distil.load(config, overrides={"components.ner.nope": 1})
    result = run("run", str(config), "Apple", "--paths.orgs", "Google")
    assert result.returncode != 0
    assert b"has no setting 'orgs'" in result.stderr
    assert b"Traceback" not in result.stderr


def test_saved_pipeline_loads_with_spacy_load(config: Path, tmp_path: Path) -> None:
    nlp = distil.load(config)
    nlp.to_disk(tmp_path / "saved")
    again = spacy.load(tmp_path / "saved")
    assert [(e.text, e.label_) for e in again("Tim Cook left Apple.").ents] == [("Tim Cook", "PERSON"), ("Apple", "ORG")]


def test_config_errors_name_file_and_problem(tmp_path: Path, config: Path) -> None:
    unknown = tmp_path / "unknown.cfg"
    unknown.write_text(CONFIG.replace("distil_ner_rules", "distil_nerr_rules"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown.cfg.*distil_nerr_rules"):
        distil.load(unknown)
    typo = tmp_path / "typo.cfg"
    typo.write_text(CONFIG.replace('"label": "PERSON"', '"label": "PERSN"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"typo.cfg.*'PERSN'"):
        distil.load(typo)
    broken = tmp_path / "broken.cfg"
    broken.write_text("[nlp\nlang = en", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.cfg"):
        distil.load(broken)
    with pytest.raises(ConfigError, match="not found"):
        distil.load(tmp_path / "missing.cfg")


def test_run_prints_one_valid_record_per_text(config: Path) -> None:
    result = run("run", str(config), "Apple hired Tim Cook.", "Nothing to see.")
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    records = [DocRecord.model_validate(json.loads(line)) for line in lines]
    assert [r.text for r in records] == ["Apple hired Tim Cook.", "Nothing to see."]
    assert [(e.text, e.label) for e in records[0].entities] == [("Apple", "ORG"), ("Tim Cook", "PERSON")]
    assert b"2 document(s) written" in result.stderr


def test_run_with_override_after_texts(config: Path) -> None:
    result = run("run", str(config), "Apple and Google", "--paths.org", "Google")
    assert result.returncode == 0, result.stderr.decode()
    record = json.loads(result.stdout)
    assert [e["text"] for e in record["entities"]] == ["Google"]


def test_run_input_file_counts_bad_lines_and_keeps_good_ones(config: Path, tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"text": "Apple news", "id": 1}\n{"text": "\xff bad"}\n{oops\n\n{"text": "Tim Cook", "id": 2}\n')
    out = tmp_path / "out.jsonl"
    result = run("run", str(config), "--input", str(data), "--output", str(out))
    assert result.returncode == 0, result.stderr.decode()
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["meta"]["id"]) for r in records] == [("Apple news", 1), ("Tim Cook", 2)]
    err = result.stderr.decode()
    assert "2 document(s) written, 3 skipped" in err
    assert "invalid UTF-8" in err and "malformed JSON" in err and f"{data}:2" in err


def test_run_reads_stdin(config: Path) -> None:
    result = run("run", str(config), "--input", "-", stdin=b"Apple\nTim Cook\n")
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["entities"][0]["label"] for line in result.stdout.decode().splitlines()] == ["ORG", "PERSON"]


def test_run_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("[nlp]\nlang = \"en\"\npipeline = [\"x\"]\n[components]\n[components.x]\nfactory = \"nope\"\n")
    result = run("run", str(bad), "text")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "error:" in err and "nope" in err and "Traceback" not in err


def test_schema_command_prints_record_schema() -> None:
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "distil DocRecord" and "entities" in schema["properties"]
    assert json.loads(run("schema", "rel").stdout)["title"] == "RELSchema"
    assert run("schema", "pos").returncode == 1


def test_help_shows_options_and_example() -> None:
    result = run("run", "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "--input" in text and "Example:" in text
