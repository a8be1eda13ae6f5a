"""``distil convert`` through a real process: outputs, the report, errors, --strict and Prodigy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from distil.corpus import read_docs
from distil.pipeline.cli import commands
from distil.pipeline.cli.app import app
from distil.records import to_record

from .conftest import distil_cli

FIXTURES = Path(__file__).parent / "fixtures" / "io"


def convert(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*distil_cli(), "convert", *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def in_process(*args: str | Path):
    """The command in this process (faster) for cases whose process behaviour is covered by the subprocess tests."""
    assert commands.convert is not None  # registers every command, as the console script does
    return CliRunner().invoke(app, ["convert", *map(str, args)])


@pytest.mark.slow
def test_conll_to_docbin_with_report(tmp_path):
    out = tmp_path / "ner.spacy"
    report = tmp_path / "report.json"
    result = convert(FIXTURES / "malformed.conll", out, "--report", report)
    assert result.returncode == 0, result.stderr
    assert "docs written: 2" in result.stdout
    assert f"{FIXTURES / 'malformed.conll'}:3 (1 columns, expected 2)" in result.stdout
    assert f"{FIXTURES / 'malformed.conll'}:5 (byte 4)" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["docs"] == 2
    assert data["skipped"] == {"wrong column count": 1, "invalid UTF-8": 1}
    assert data["entities"] == {"person": 1, "group": 1}
    docs = list(read_docs(out, spacy.blank("en")))
    assert [[(e.text, e.label_) for e in doc.ents] for doc in docs] == [[("Stray", "person")], [("Next", "group")]]


@pytest.mark.slow
def test_strict_fails_naming_the_line_and_writes_nothing(tmp_path):
    out = tmp_path / "ner.spacy"
    result = convert(FIXTURES / "malformed.conll", out, "--strict")
    assert result.returncode != 0
    assert "malformed.conll:3: wrong column count" in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_semeval_to_records_and_prodigy_and_back(tmp_path):
    records_path = tmp_path / "sem.jsonl"
    result = convert(FIXTURES / "semeval.txt", records_path)  # format detected from the content
    assert result.returncode == 0, result.stderr
    assert "relations: 2" in result.stdout
    records = [json.loads(line) for line in records_path.read_text(encoding="utf-8").splitlines()]
    assert records[0]["relations"] == [{"head": 1, "tail": 0, "label": "Product-Producer", "score": None}]
    assert records[0]["meta"] == {"id": "1"}

    prodigy_path = tmp_path / "review.jsonl"
    moved = in_process(records_path, prodigy_path, "--format", "records", "--to", "prodigy")
    assert moved.exit_code == 0, moved.output
    tasks = [json.loads(line) for line in prodigy_path.read_text(encoding="utf-8").splitlines()]
    assert tasks[0]["relations"][0]["label"] == "Product-Producer" and "spans" in tasks[0]

    back = tmp_path / "back.spacy"
    back_result = in_process(prodigy_path, back, "--format", "jsonl")
    assert back_result.exit_code == 0, back_result.output
    nlp = spacy.blank("en")
    assert [to_record(d).model_dump() for d in read_docs(back, nlp)] == records


def test_csv_with_label_file(tmp_path):
    out = tmp_path / "cats.jsonl"
    result = in_process(FIXTURES / "intents.csv", out, "--labels", FIXTURES / "labels.json")
    assert result.exit_code == 0, result.output
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["cats"] == {"card_arrival": 1.0, "exchange_rate": 0.0, "greeting": 0.0, "lost_or_stolen_card": 0.0}


@pytest.mark.slow
def test_clear_errors(tmp_path):
    missing = convert(tmp_path / "nope.conll", tmp_path / "out.spacy")
    assert missing.returncode != 0 and "input file not found" in missing.stderr
    unknown = in_process(FIXTURES / "intents.csv", tmp_path / "out.spacy", "--format", "xml")
    assert unknown.exit_code != 0 and "unknown input format 'xml'" in unknown.output
    bad_output = in_process(FIXTURES / "intents.csv", tmp_path / "out.txt")
    assert bad_output.exit_code != 0 and "use .spacy (DocBin) or .jsonl" in bad_output.output
    array = in_process(FIXTURES / "labels.json", tmp_path / "out.spacy")
    assert array.exit_code != 0 and "this is a JSON array" in array.output
    (tmp_path / "notes.dat").write_text("some words\n", encoding="utf-8")
    undetectable = in_process(tmp_path / "notes.dat", tmp_path / "out.spacy")
    assert undetectable.exit_code != 0 and "pass --format" in undetectable.output
    empty = in_process(FIXTURES / "empty.conll", tmp_path / "empty.spacy")
    assert empty.exit_code != 0 and "input is empty" in empty.output and not (tmp_path / "empty.spacy").exists()


def test_help_has_an_example():
    result = in_process("--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "--strict" in result.output and "--to" in result.output


def test_docbin_input_to_prodigy(tmp_path):
    spacy_path = tmp_path / "ner.spacy"
    assert in_process(FIXTURES / "iob2.conll", spacy_path).exit_code == 0
    out = tmp_path / "review.jsonl"
    result = in_process(spacy_path, out, "--to", "prodigy")  # .spacy is detected as docbin
    assert result.exit_code == 0, result.output
    tasks = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [[(s["label"], s["token_start"], s["token_end"]) for s in t["spans"]] for t in tasks] == [
        [("person", 0, 0), ("location", 3, 4)],
        [("corporation", 0, 0), ("corporation", 1, 1), ("product", 4, 5)],
    ]


def test_an_unexpected_reader_error_keeps_what_was_converted(tmp_path, monkeypatch):
    from distil.pipeline.io import convert as convert_io
    from distil.pipeline.io.conversion_report import ConversionError

    real = convert_io.read_conll

    def breaks_after_first(*args, **kwargs):
        docs = real(*args, **kwargs)
        yield next(docs)
        raise RuntimeError("boom")

    monkeypatch.setattr(convert_io, "read_conll", breaks_after_first)
    out = tmp_path / "partial.jsonl"
    with pytest.raises(ConversionError, match="the 1 documents read before it were written"):
        convert_io.convert(FIXTURES / "iob2.conll", out)
    assert json.loads(out.read_text(encoding="utf-8"))["text"] == "Alex lives in New York ."
