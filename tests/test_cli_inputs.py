"""Bad and awkward inputs through the real command line: a clear message and exit code, never a traceback.

One case per finding of issue 17 on inputs (4-9, 13, 14). Each runs the
commands of the case in this process through :func:`distil.pipeline.cli.run_cli`,
the function the console script runs (so the output is what a user sees), and
checks the exit status of the last command, that no traceback or internal
error was printed, and that the message names the problem. A few cases also run
in a real process, to show the two agree.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from distil.pipeline.annotate import text_key
from distil.pipeline.cli import run_cli

from .conftest import REPO, distil_cli

NER = "configs/ner_rules.cfg"
ALL = "configs/all_rules.cfg"
BOM = "\ufeff"


def _record(text: str, entities: list[tuple[int, int, str]]) -> str:
    ents = [{"start": s, "end": e, "label": label, "text": text[s:e], "score": 0.9} for s, e, label in entities]
    record = {"text": text, "entities": ents, "relations": [], "cats": {}, "meta": {"key": text_key(text)}}
    return json.dumps(record) + "\n"


RECORDS = _record("Tim Cook runs Apple.", [(0, 8, "person"), (14, 19, "corporation")]) + _record(
    "Sundar Pichai joined Google.", [(0, 13, "person")]
)


def _task(text: str, spans: list[tuple[int, int, str]], answer: str | None = "accept") -> str:
    task: dict[str, object] = {
        "text": text,
        "spans": [{"start": s, "end": e, "label": label} for s, e, label in spans],
        "meta": {"key": text_key(text)},
    }
    if answer is not None:
        task["answer"] = answer
    return json.dumps(task) + "\n"


@dataclass(frozen=True)
class Case:
    """Files to create, commands to run (all but the last must succeed), and what the last one must say."""

    files: dict[str, str | bytes]
    steps: list[list[str]]
    code: int
    says: list[str]
    not_says: list[str] = field(default_factory=list)
    file_has: dict[str, list[str]] = field(default_factory=dict)
    no_file: list[str] = field(default_factory=list)


CASES: dict[str, Case] = {
    # 4: exported tasks carry no answer, and an unanswered task is not a reviewed one.
    "4-prodigy-export-unanswered": Case(
        {"records.jsonl": RECORDS},
        [
            ["review", "export", "{tmp}/records.jsonl", "--config", NER, "-o", "{tmp}/tasks.jsonl"],
            ["review", "import", "{tmp}/tasks.jsonl", "--into", "{tmp}/records.jsonl", "--config", NER],
        ],
        0,
        ["0 reviewed (0 changed)", "2 unanswered"],
        file_has={"records.jsonl": ['"key"']},
    ),
    # 5: a label outside the schema is refused with file:line; Label Studio is offered every schema label.
    "5-import-unknown-label": Case(
        {"records.jsonl": RECORDS, "review.jsonl": _task("Tim Cook runs Apple.", [(0, 8, "persn")])},
        [["review", "import", "{tmp}/review.jsonl", "--into", "{tmp}/records.jsonl", "--config", NER]],
        1,
        ["review.jsonl:1: entity label 'persn' is not in the schema", "known: person", "1 invalid"],
    ),
    "5-import-needs-config": Case(
        {"records.jsonl": RECORDS, "review.jsonl": _task("Tim Cook runs Apple.", [(0, 8, "person")])},
        [["review", "import", "{tmp}/review.jsonl", "--into", "{tmp}/records.jsonl"]],
        2,
        ["--config"],
    ),
    "5-labelstudio-offers-every-label": Case(
        {"records.jsonl": RECORDS},
        [["review", "export", "{tmp}/records.jsonl", "--config", ALL, "--format", "labelstudio", "-o", "{tmp}/ls.json"]],
        0,
        ["2 task(s) written"],
        file_has={"ls.xml": ['<Label value="product"/>', '<Relation value="created"/>', '<Choice value="atm_support"/>']},
    ),
    # 6: texts as arguments and --input together.
    "6-run-input-and-texts": Case(
        {"docs.txt": "Apple hired Tim Cook.\n"},
        [["run", NER, "--input", "{tmp}/docs.txt", "another text"]],
        1,
        ["not both", "'another text'"],
    ),
    # 7: a DocBin (and distil records) are read as documents; another binary file is refused by name.
    "7-run-input-docbin": Case(
        {"gold.csv": "text,label\nApple hired Tim Cook.,hire\n"},
        [["convert", "{tmp}/gold.csv", "{tmp}/gold.spacy"], ["run", NER, "--input", "{tmp}/gold.spacy"]],
        0,
        ['"text": "Apple hired Tim Cook."', "1 document(s) written"],
        not_says=["skipped"],
    ),
    "7-run-input-records": Case(
        {"records.jsonl": RECORDS},
        [["run", NER, "--input", "{tmp}/records.jsonl"]],
        0,
        ["2 document(s) written", '"text": "Sundar Pichai joined Google."'],
        # Read as documents, not as {"text": ...} lines whose other fields would land in the output meta.
        not_says=["skipped", '"meta": {"entities"'],
    ),
    "7-run-input-binary": Case(
        {"blob.bin": b"\x00\x01\x02binary\x00"},
        [["run", NER, "--input", "{tmp}/blob.bin"]],
        1,
        ["blob.bin: a binary file is not text"],
    ),
    # 8: a header that names no known column.
    "8-convert-unknown-csv-header": Case(
        {"intents.csv": "query,intent_name\nHow do I top up?,top_up\nWhere is my card?,card_arrival\n"},
        [["convert", "{tmp}/intents.csv", "{tmp}/out.spacy"]],
        1,
        ["intents.csv:1", "looks like a header", "--text-column query --label-column intent_name"],
        no_file=["out.spacy"],
    ),
    # 9: a UTF-8 BOM is dropped by every reader.
    "9-run-txt-bom": Case(
        {"bom.txt": BOM + "Apple hired Tim Cook.\n"},
        [["run", NER, "--input", "{tmp}/bom.txt"]],
        0,
        ['"text": "Apple hired Tim Cook."', '"start": 0, "end": 5'],
        not_says=["\\ufeff"],
    ),
    "9-run-jsonl-bom": Case(
        {"bom.jsonl": BOM + '{"text": "Apple hired Tim Cook."}\n'},
        [["run", NER, "--input", "{tmp}/bom.jsonl"]],
        0,
        ["1 document(s) written"],
        not_says=["skipped"],
    ),
    "9-annotate-csv-bom": Case(
        {"bom.csv": BOM + "text,id\nApple hired Tim Cook.,7\n"},
        [["annotate", NER, "{tmp}/bom.csv", "-o", "{tmp}/ann"]],
        0,
        ["1 new document(s)", "0 skipped"],
    ),
    "9-review-import-bom": Case(
        {"records.jsonl": RECORDS, "review.jsonl": BOM + _task("Tim Cook runs Apple.", [(0, 8, "person")])},
        [["review", "import", "{tmp}/review.jsonl", "--into", "{tmp}/records.jsonl", "--config", NER]],
        0,
        ["1 reviewed (1 changed)", "0 invalid"],
    ),
    "9-convert-csv-bom": Case(
        {"bom.csv": BOM + "text,label\nhi there,greet\n"},
        [["convert", "{tmp}/bom.csv", "{tmp}/out.jsonl"]],
        0,
        ["docs written: 1"],
        file_has={"out.jsonl": ['"text": "hi there"']},
    ),
    # 13: empty or mismatched input fails, saying so.
    "13-convert-empty-jsonl": Case(
        {"empty.jsonl": ""}, [["convert", "{tmp}/empty.jsonl", "{tmp}/out.spacy"]], 1, ["input is empty"]
    ),
    "13-convert-empty-csv": Case(
        {"empty.csv": "\n"},
        [["convert", "{tmp}/empty.csv", "{tmp}/out.spacy"]],
        1,
        ["input is empty"],
        no_file=["out.spacy"],
    ),
    "13-convert-nothing-usable": Case(
        {"labels.csv": "text,label\nfirst,\nsecond,\n"},
        [["convert", "{tmp}/labels.csv", "{tmp}/out.spacy"]],
        1,
        ["no documents converted", "2 x empty label"],
        no_file=["out.spacy"],
    ),
    "13-run-empty": Case({"empty.txt": ""}, [["run", NER, "--input", "{tmp}/empty.txt"]], 1, ["input is empty"]),
    "13-run-csv-header-only": Case(
        {"header.csv": "text,id\n"}, [["run", NER, "--input", "{tmp}/header.csv"]], 1, ["input is empty"]
    ),
    "13-annotate-empty-csv": Case(
        {"empty.csv": ""}, [["annotate", NER, "{tmp}/empty.csv", "-o", "{tmp}/ann"]], 1, ["input is empty"]
    ),
    "13-simulate-no-texts-matched": Case(
        {"records.jsonl": RECORDS, "other.csv": "text,label\nSomething else entirely.,x\n"},
        [
            ["convert", "{tmp}/other.csv", "{tmp}/other.spacy"],
            ["review", "simulate", "{tmp}/records.jsonl", "--gold", "{tmp}/other.spacy", "--fraction", "0.5",
             "-o", "{tmp}/sim"],
        ],
        1,
        ["no texts matched"],
        no_file=["sim"],
    ),
    # 14: a JSON array where JSON Lines are expected; ordinary JSONL given as a corpus.
    "14-run-json-array": Case(
        {"docs.json": '[{"text": "Apple hired Tim Cook."}, {"text": "Hi."}]\n'},
        [["run", NER, "--input", "{tmp}/docs.json"]],
        1,
        ["this is a JSON array; give one JSON object per line"],
    ),
    "14-run-pretty-json-array": Case(
        {"docs.json": '[\n  {"text": "Apple hired Tim Cook."},\n  {"text": "Hi."}\n]\n'},
        [["run", NER, "--input", "{tmp}/docs.json"]],
        1,
        ["this is a JSON array"],
        not_says=["document(s) written"],
    ),
    "14-convert-json-array": Case(
        {"docs.json": '[{"text": "a"}]\n'}, [["convert", "{tmp}/docs.json", "{tmp}/out.spacy"]], 1, ["JSON array"]
    ),
    "14-convert-records-json-array": Case(
        {"docs.jsonl": '[{"text": "a"}]\n'},
        [["convert", "{tmp}/docs.jsonl", "{tmp}/out.spacy", "--format", "records"]],
        1,
        ["this is a JSON array", "docs.lines.jsonl"],
        not_says=["validation error"],
    ),
    "14-annotate-json-array": Case(
        {"docs.jsonl": '[{"text": "a"}]\n'},
        [["annotate", NER, "{tmp}/docs.jsonl", "-o", "{tmp}/ann"]],
        1,
        ["this is a JSON array"],
    ),
    "14-review-import-json-array": Case(
        {"records.jsonl": RECORDS, "review.jsonl": '[{"text": "Tim Cook runs Apple."}]\n'},
        [["review", "import", "{tmp}/review.jsonl", "--into", "{tmp}/records.jsonl", "--config", NER]],
        1,
        ["this is a JSON array"],
    ),
    "14-evaluate-plain-jsonl": Case(
        {"gold.jsonl": '{"id": 1, "text": "Apple hired Tim Cook."}\n'},
        [["evaluate", NER, "{tmp}/gold.jsonl"]],
        1,
        ["gold.jsonl:1: not a distil record", "unknown field(s) 'id'", "distil convert"],
        not_says=["validation error", "extra_forbidden"],
    ),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_cli(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    monkeypatch.chdir(REPO)  # the rules configs name their rule files relative to the repository root
    for file_name, content in case.files.items():
        path = tmp_path / file_name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    *setup, last = [[arg.replace("{tmp}", str(tmp_path)) for arg in step] for step in case.steps]
    for step in setup:
        code, output = _run(step, capsys)
        assert code == 0, f"setup step {step} failed:\n{output}"
    code, output = _run(last, capsys)
    assert "Traceback" not in output and "internal error" not in output, output
    assert code == case.code, output
    for text in case.says:
        assert text in output, f"{text!r} not in:\n{output}"
    for text in case.not_says:
        assert text not in output, f"{text!r} in:\n{output}"
    for file_name, texts in case.file_has.items():
        content = (tmp_path / file_name).read_text(encoding="utf-8")
        assert all(text in content for text in texts), content
    for file_name in case.no_file:
        assert not (tmp_path / file_name).exists(), f"{file_name} was written"


def test_exported_tasks_carry_no_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "records.jsonl").write_text(RECORDS, encoding="utf-8")
    code, output = _run(
        ["review", "export", str(tmp_path / "records.jsonl"), "--config", str(REPO / NER), "-o", str(tmp_path / "t.jsonl")],
        capsys,
    )
    assert code == 0, output
    tasks = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(tasks) == 2 and all("answer" not in task for task in tasks)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["6-run-input-and-texts", "13-run-empty", "14-evaluate-plain-jsonl"])
def test_real_process_agrees(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    for file_name, content in case.files.items():
        (tmp_path / file_name).write_text(str(content), encoding="utf-8")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in case.steps[-1]]
    result = subprocess.run([*distil_cli(), *argv], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == case.code and "Traceback" not in result.stderr, result.stderr
    assert all(text in result.stdout + result.stderr for text in case.says), result.stderr


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.cfg")), ids=lambda p: p.name)
def test_config_header_suggests_an_existing_path(config: Path) -> None:
    """The override a config's header comment suggests must be one of its own [paths] settings."""
    text = config.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    paths_block = re.search(r"^\[paths\]\n(.*?)(?=^\[)", text, re.S | re.M)
    declared = set(re.findall(r"^(\w+)\s*=", paths_block.group(1), re.M)) if paths_block else set()
    for suggested in re.findall(r"--paths\.(\w+)", header):
        assert suggested in declared, f"{config.name} suggests --paths.{suggested}; [paths] has {sorted(declared)}"
