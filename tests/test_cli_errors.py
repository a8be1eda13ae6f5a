"""Bad input to the CLI: one ``error: ...`` line, the right exit status, never a traceback (issue 17).

Most cases call :func:`distil.pipeline.cli.run_cli`, which is ``main()``
without its ``sys.exit``: the same central error handler as the console
script, in this process so that the table stays fast. A few cases run the
real ``python -m distil`` in a subprocess (the version, a misspelt option,
and a pipeline installed as a package, which needs a fresh interpreter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from distil import __version__
from distil.pipeline.cli import run_cli

REPO = Path(__file__).resolve().parent.parent

SMALL_CONFIG = """\
[nlp]
lang = "en"
pipeline = ["ner"]

[schemas]

[schemas.ner]
@misc = "distil.NERSchema.v1"
labels = {"person": "Names of people", "corporation": "Companies"}

[components]

[components.ner]
factory = "distil_ner_rules"
schema = ${schemas.ner}
patterns = [{"label": "corporation", "pattern": "Apple"}]
"""


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    """A folder of good and broken inputs, one per case of the table."""
    (tmp_path / "small.cfg").write_text(SMALL_CONFIG, encoding="utf-8")
    (tmp_path / "unclosed.cfg").write_text(SMALL_CONFIG.replace('lang = "en"', 'lang = "en'), encoding="utf-8")
    (tmp_path / "factory.cfg").write_text(SMALL_CONFIG.replace("distil_ner_rules", "distil_ner_rule"), encoding="utf-8")
    start, end = SMALL_CONFIG.index("[schemas.ner]"), SMALL_CONFIG.index("[components]")
    (tmp_path / "noschema.cfg").write_text(SMALL_CONFIG[:start] + SMALL_CONFIG[end:], encoding="utf-8")
    (tmp_path / "patterns.jsonl").write_text(
        '{"label": "person", "pattern": "Tim"}\n{"label": "persn", "pattern": "Bob"}\n', encoding="utf-8"
    )
    (tmp_path / "with_file.cfg").write_text(
        SMALL_CONFIG.replace(
            'patterns = [{"label": "corporation", "pattern": "Apple"}]',
            f"patterns_path = {json.dumps(str(tmp_path / 'patterns.jsonl'))}",
        ),
        encoding="utf-8",
    )
    (tmp_path / "a_file").write_text("not a directory", encoding="utf-8")
    (tmp_path / "array.jsonl").write_text('[{"text": "a"}]\n', encoding="utf-8")
    record = {"text": "Apple hired Tim.", "entities": [{"start": 0, "end": 5, "label": "corporation", "text": "Apple"}],
              "relations": [], "cats": {}, "meta": {}}
    (tmp_path / "gold.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the CLI in this process; return its exit status and stdout + stderr."""
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


CFG = "{cfg}"  # the small config, filled in per case
# (case id, arguments with {dir} and {cfg} placeholders, exit status, text the message must contain)
CASES: list[tuple[str, list[str], int, str]] = [
    # 10: a misspelt option on the commands that take overrides is a usage error naming the real option
    ("10-run-option", ["run", CFG, "--ouput", "x.jsonl", "text"], 2, "did you mean --output?"),
    ("10-compare-option", ["compare", "--gold", "g", "--outptu", "o", CFG], 2, "did you mean --output?"),
    ("10-annotate-option", ["annotate", CFG, "in.txt", "--ouput", "o"], 2, "did you mean --output?"),
    ("10-package-option", ["package", CFG, "--ouput", "o", "--name", "x"], 2, "did you mean --output?"),
    ("10-assemble-option", ["assemble", CFG, "{dir}/out", "--ouput", "o"], 2, "distil assemble takes --help"),
    ("10-unknown-option-lists", ["run", CFG, "--frobnicate", "text"], 2, "--batch-size, --cpus-per-replica, --engine"),
    ("10-missing-input", ["run", CFG, "--input", "{dir}/missing.txt"], 1, "missing.txt"),
    ("10-assemble-into-file", ["assemble", CFG, "{dir}/a_file"], 1, "is a file"),
    ("10-unclosed-quote", ["run", "{dir}/unclosed.cfg", "text"], 1, "unclosed.cfg: line 2: unclosed quote"),
    ("10-json-array", ["review", "import", "{dir}/array.jsonl", "--into", "{dir}/gold.jsonl", "-c", CFG], 1,
     "JSON array"),
    ("10-missing-argument", ["run"], 2, "Missing argument"),
    # 11: an argument the component does not take lists the ones it does, without a config dump
    ("11-unexpected-argument", ["run", CFG, "text", "--components.ner.default_score", "0.1"], 1,
     "has no argument 'default_score' (from --components.ner.default_score); it takes: schema, patterns"),
    # 12: errors from spaCy and confection, translated
    ("12-unknown-factory", ["run", "{dir}/factory.cfg", "text"], 1, "did you mean 'distil_ner_rules'?"),
    ("12-missing-schema", ["run", "{dir}/noschema.cfg", "text"], 1, "has no [schemas.ner] block; add it"),
    ("12-pattern-label", ["run", "{dir}/with_file.cfg", "text"], 1, "patterns.jsonl:2: 'ner' pattern"),
    # 16: the version is checked before anything is built
    ("16-package-version", ["package", CFG, "--output", "{dir}/pkg", "--name", "x", "--version", "one"], 1,
     "--version 'one' is not a valid package version"),
    # 17: a name that is neither a file nor an installed package
    ("17-unknown-package", ["run", "en_no_such_pipeline", "text"], 1, "no such config file, pipeline directory or installed pipeline package"),
    # 18: the version
    ("18-version", ["--version"], 0, f"distil {__version__}"),
    # 19: with several pipelines an override must name its pipeline; with one it applies
    ("19-ambiguous", ["compare", "--gold", "{dir}/gold.jsonl", "-o", "{dir}/cmp", f"a={CFG}", f"b={CFG}",
                      "--components.ner.score", "0.5"], 1, "prefix it with the pipeline's name, e.g. --a."),
    ("19-per-pipeline", ["compare", "--gold", "{dir}/gold.jsonl", "-o", "{dir}/cmp", f"a={CFG}", f"b={CFG}",
                         "--b.components.ner.score", "2.0"], 1, "b ("),
    ("19-single", ["compare", "--gold", "{dir}/gold.jsonl", "-o", "{dir}/cmp", CFG,
                   "--components.ner.score", "2.0"], 1, "score must be between 0 and 1"),
]


@pytest.mark.parametrize(("args", "status", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_error_line(
    capsys: pytest.CaptureFixture[str], files: Path, args: list[str], status: int, expected: str
) -> None:
    filled = [arg.replace("{cfg}", str(files / "small.cfg")).replace("{dir}", str(files)) for arg in args]
    code, output = cli(capsys, *filled)
    assert code == status, output
    assert "Traceback" not in output
    assert expected in output, output
    if status:
        assert "error: " in output
        assert len(output) < 1500, "a message, not a dump"


def test_package_version_leaves_nothing_behind(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    code, _ = cli(capsys, "package", str(files / "small.cfg"), "-o", str(files / "pkg"), "-n", "x", "-v", "1.0-x")
    assert code == 1
    assert not (files / "pkg").exists()


def test_assemble_creates_missing_parents(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    code, output = cli(capsys, "assemble", str(files / "small.cfg"), str(files / "new" / "deeper" / "pipeline"))
    assert code == 0, output
    assert (files / "new" / "deeper" / "pipeline" / "meta.json").exists()


def test_single_pipeline_override_applies(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    code, output = cli(
        capsys, "compare", "--gold", str(files / "gold.jsonl"), "-o", str(files / "cmp"), "--latency-docs", "0",
        "--repeats", "1", "--warmup-docs", "0", f"rules={files / 'small.cfg'}", "--rules.components.ner.score", "0.5",
    )
    assert code == 0, output
    assert (files / "cmp" / "compare.json").exists()


@pytest.mark.parametrize(
    ("raise_error", "expected"),
    [
        (lambda: RuntimeError("boom"), "error: internal error: RuntimeError: boom (run with --debug"),
        (lambda: PermissionError(13, "Permission denied", "/x/y"), "error: permission denied: /x/y"),
    ],
    ids=["bug", "os-error"],
)
def test_unexpected_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, files: Path,
    raise_error: Callable[[], Exception], expected: str,
) -> None:
    from distil.pipeline.cli import assemble

    def broken(*_: object, **__: object) -> None:
        raise raise_error()

    monkeypatch.setattr(assemble, "load_pipeline", broken)
    code, output = cli(capsys, "assemble", str(files / "small.cfg"), str(files / "out"))
    assert (code, "Traceback" in output) == (1, False)
    assert expected in output
    # --debug (or DISTIL_DEBUG=1) adds the traceback, and the bug's own exception reaches Python
    if isinstance(raise_error(), RuntimeError):
        with pytest.raises(RuntimeError):
            run_cli(["--debug", "assemble", str(files / "small.cfg"), str(files / "out")])
    else:
        monkeypatch.setenv("DISTIL_DEBUG", "1")
        code, output = cli(capsys, "assemble", str(files / "small.cfg"), str(files / "out"))
        assert code == 1 and "Traceback" in output and expected in output


def test_help_shows_arguments_overrides_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = cli(capsys, "run", "--help")
    assert code == 0
    assert "Usage: distil run [OPTIONS] CONFIG [TEXTS]... [--section.key VALUE]..." in output
    assert "default_score" not in output  # the example override exists (finding 11)
    code, output = cli(capsys, "compare", "--help")
    assert "--cache / --no-cache" in output and "<bool>" not in output
    code, output = cli(capsys, "--help")
    assert "--version" in output and "--debug" in output and "<bool>" not in output


def python_m_distil(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, ``python -m distil``, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "distil", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )


def test_entry_point_version_and_usage_error() -> None:
    result = python_m_distil("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"distil {__version__}")
    result = python_m_distil("run", "configs/ner_rules.cfg", "--ouput", "x", "text")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: no such option: --ouput; did you mean --output?" in result.stderr


def test_installed_package_name_is_a_pipeline(capsys: pytest.CaptureFixture[str], files: Path) -> None:
    """Finding 17: build a real wheel with ``distil package``, unpack it (a pure-Python install), run it by name."""
    code, output = cli(capsys, "package", str(files / "small.cfg"), "-o", str(files / "pkg"), "-n", "errtest")
    assert code == 0, output
    site = files / "site"
    with zipfile.ZipFile(next((files / "pkg" / "dist").glob("en_errtest-*.whl"))) as wheel:
        wheel.extractall(site)
    result = python_m_distil("run", "en_errtest", "Apple hired Tim.", PYTHONPATH=str(site))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entities"][0]["label"] == "corporation"
