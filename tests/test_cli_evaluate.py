"""``distil evaluate`` end to end: a real config with the rules NER backend, real files, real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distil.pipeline.cli import app
from distil.pipeline.cli import commands as _commands  # noqa: F401  (registers the commands)

DISTIL = Path(sys.executable).parent / "distil"

CONFIG = """\
[paths]
patterns = null

[nlp]
lang = "en"
pipeline = ["ner"]

[schemas]

[schemas.ner]
@misc = "distil.NERSchema.v1"
labels = ["PERSON", "ORG"]

[components]

[components.ner]
factory = "distil_ner_rules"
schema = ${schemas.ner}
patterns_path = ${paths.patterns}
"""

PATTERNS = [{"label": "PERSON", "pattern": "Tim Cook"}, {"label": "ORG", "pattern": "Apple"}]

GOLD = [
    {"text": "Tim Cook runs Apple .", "entities": [
        {"start": 0, "end": 8, "label": "PERSON", "text": "Tim Cook"},
        {"start": 14, "end": 19, "label": "ORG", "text": "Apple"},
    ]},
    # "Apple" here is no company (a false positive) and Anna has no pattern (a miss).
    {"text": "Anna likes Apple pie .", "entities": [{"start": 0, "end": 4, "label": "PERSON", "text": "Anna"}]},
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "ner.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text("".join(json.dumps(p) + "\n" for p in PATTERNS), encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(g) + "\n" for g in GOLD), encoding="utf-8")
    return {"config": config, "patterns": patterns, "gold": gold, "dir": tmp_path}


def distil(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DISTIL), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_evaluate_prints_a_table_and_writes_the_report(files: dict[str, Path]):
    report = files["dir"] / "out" / "report.json"
    result = distil("evaluate", files["config"], files["gold"], "--output", report,
                    "--paths.patterns", files["patterns"])
    assert result.returncode == 0, result.stderr
    # tp 2 (Tim Cook, Apple in doc 1), fp 1 (Apple pie), fn 1 (Anna): P = R = F = 2/3.
    assert "Entities" in result.stdout
    assert "66.67" in result.stdout
    assert "docs/s" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["scores"]["ents_f"] == pytest.approx(2 / 3)
    assert data["scores"]["ents_per_type"]["ORG"] == {"p": 0.5, "r": 1.0, "f": pytest.approx(2 / 3)}
    assert data["overrides"] == {"paths.patterns": str(files["patterns"])}
    assert data["n_docs"] == 2 and data["n_failed_docs"] == 0
    assert data["speed"]["words_per_second"] > 0


@pytest.mark.slow
def test_missing_gold_file_is_a_clear_error(files: dict[str, Path]):
    result = distil("evaluate", files["config"], files["dir"] / "nope.spacy")
    assert result.returncode == 1
    assert "gold file not found" in result.stderr and "nope.spacy" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_shows_an_example():
    result = CliRunner().invoke(app, ["evaluate", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "distil evaluate configs/ner_rules.cfg" in result.output


@pytest.mark.filterwarnings("ignore:.*W036")
def test_limit_and_overrides_apply(files: dict[str, Path]):
    report = files["dir"] / "r.json"
    result = CliRunner().invoke(app, [
        # --limit draws a seeded random sample; seed 1 draws the first of the two documents.
        "evaluate", str(files["config"]), str(files["gold"]), "--limit", "1", "--seed", "1", "-o", str(report),
        "--paths.patterns", str(files["patterns"]),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["n_docs"] == 1
    assert data["scores"]["ents_f"] == pytest.approx(1.0)
    # Without the override the ruler has no patterns: nothing is found.
    result = CliRunner().invoke(app, ["evaluate", str(files["config"]), str(files["gold"]), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text(encoding="utf-8"))["scores"]["ents_r"] == 0.0


def test_malformed_config_is_a_clear_error(files: dict[str, Path]):
    bad = files["dir"] / "bad.cfg"
    bad.write_text("[nlp\nlang = en\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(bad), str(files["gold"])])
    assert result.exit_code == 1
    assert "bad.cfg" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_empty_gold_set_is_a_clear_error(files: dict[str, Path]):
    empty = files["dir"] / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(files["config"]), str(empty)])
    assert result.exit_code == 1
    assert "input is empty" in result.output
    assert isinstance(result.exception, SystemExit)


def test_unknown_option_is_a_clear_error(files: dict[str, Path]):
    result = CliRunner().invoke(app, ["evaluate", str(files["config"]), str(files["gold"]), "--limt", "3"])
    assert result.exit_code == 2  # a usage error, as click gives for any unknown option
    assert "--limt" in result.output
