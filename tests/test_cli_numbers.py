"""Numbers that must not lie (issue 17, findings 1, 2, 3 and 15): timing, sampling, missing models, compare's checks.

Each CLI case runs the real command line in-process (``run_cli``, the console
script's entry point, with its one error format) on real configs and small
gold files written here, and asserts the exit code, that no traceback is
printed and that the message names the problem. The timing method is tested
deterministically (call order, a fake clock), never by a speed: speed numbers
live in bench/ (bench/compare_position.py).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from distil.pipeline import evaluate as evaluate_module
from distil.pipeline.cli import run_cli
from distil.pipeline.compare import compare_pipelines
from distil.pipeline.evaluate import evaluate, timed_runs
from distil.pipeline.sample import sample_indices, take_sample

REPO = Path(__file__).resolve().parent.parent

# 12 intents, 10 documents each, sorted by label as BANKING77's test file is: the first 30 hold 3 intents.
LABELS = [f"intent{i:02d}" for i in range(12)]
PER_LABEL = 10

TEXTCAT = """\
[nlp]
lang = "en"
pipeline = ["textcat"]

[schemas]

[schemas.textcat]
@misc = "distil.TextCatSchema.v1"
exclusive = true
labels = LABELS

[components]

[components.textcat]
factory = "distil_textcat_rules"
schema = ${schemas.textcat}
rules = RULES
"""

NER = """\
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
patterns = [{"label": "PERSON", "pattern": "Tim Cook"}, {"label": "ORG", "pattern": "Apple"}]
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A perfect keyword classifier over label-sorted gold, an NER rules config and its gold, and bad inputs."""
    rules = [{"label": label, "keyword": label, "weight": 1.0} for label in LABELS]
    textcat = tmp_path / "textcat.cfg"
    textcat.write_text(TEXTCAT.replace("LABELS", json.dumps(LABELS)).replace("RULES", json.dumps(rules)))
    sorted_gold = tmp_path / "sorted.jsonl"
    with sorted_gold.open("w", encoding="utf-8") as out:
        for label in LABELS:
            for i in range(PER_LABEL):
                cats = {other: float(other == label) for other in LABELS}
                out.write(json.dumps({"text": f"message {i} about {label} please", "cats": cats}) + "\n")
    ner = tmp_path / "ner.cfg"
    ner.write_text(NER)
    ner_gold = tmp_path / "ner.jsonl"
    with ner_gold.open("w", encoding="utf-8") as out:
        for i in range(30):
            text = f"Tim Cook runs Apple , day {i} ."
            ents = [{"start": 0, "end": 8, "label": "PERSON", "text": "Tim Cook"},
                    {"start": 14, "end": 19, "label": "ORG", "text": "Apple"}]
            out.write(json.dumps({"text": text, "entities": ents}) + "\n")
    # The shipped encoder config, pointed at a model directory that does not exist.
    encoder = tmp_path / "ner_encoder.cfg"
    text = (REPO / "configs" / "ner_encoder.cfg").read_text(encoding="utf-8")
    encoder.write_text(text.replace('model = "models/ner"', f'model = "{(tmp_path / "nowhere").as_posix()}"'))
    malformed = tmp_path / "malformed.cfg"
    malformed.write_text("[nlp\nlang = en\n")
    return {"textcat": textcat, "sorted": sorted_gold, "ner": ner, "ner_gold": ner_gold, "encoder": encoder,
            "malformed": malformed, "dir": tmp_path}


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """Run ``distil ARGS`` in-process; the exit code and stdout + stderr."""
    code = run_cli([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def fill(args: Iterable[str], files: dict[str, Path]) -> list[str]:
    """Replace ``{name}`` in each argument by the fixture path of that name."""
    return [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]


# --- finding 2: a subset is a seeded random sample, never the first N -------------------------------------------


def test_sample_of_label_sorted_docs_covers_many_labels_and_is_reproducible() -> None:
    docs = [label for label in LABELS for _ in range(PER_LABEL)]
    first = docs[:30]
    sample = take_sample(docs, 30, seed=0)
    assert len(set(first)) == 3, "the trap: the first 30 hold 3 of 12 labels"
    assert len(set(sample)) >= 9
    assert take_sample(docs, 30, seed=0) == sample, "the same seed gives the same sample"
    assert take_sample(docs, 30, seed=1) != sample
    assert sample_indices(len(docs), 30, seed=0) == sorted(sample_indices(len(docs), 30, seed=0)), "corpus order"
    assert take_sample(docs, None) == docs and take_sample(docs, 500) == docs, "no limit or a big one: everything"


@pytest.mark.parametrize(
    ("args", "labels_at_least"),
    [
        (["evaluate", "{textcat}", "{sorted}", "--limit", "30", "--seed", "0", "-o", "{dir}/a.json"], 9),
        (["evaluate", "{textcat}", "{sorted}", "--limit", "30", "--seed", "7", "-o", "{dir}/a.json"], 9),
        (["evaluate", "{textcat}", "{sorted}", "-o", "{dir}/a.json"], 12),
    ],
)
def test_evaluate_limit_is_a_seeded_sample(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], args: list[str], labels_at_least: int
) -> None:
    code, output = cli(capsys, *fill(args, files))
    assert code == 0, output
    assert "Traceback" not in output
    report = json.loads((files["dir"] / "a.json").read_text(encoding="utf-8"))
    # The rules are perfect: a label scores F > 0 exactly when the evaluated documents include it.
    seen = [label for label, prf in report["scores"]["cats_f_per_type"].items() if prf["f"] > 0]
    assert len(seen) >= labels_at_least
    if "--limit" in args:
        assert report["n_docs"] == 30 and report["sample"]["of"] == 120
        assert "random sample of 30 of 120" in output
        code, _ = cli(capsys, *fill(args, files))
        again = json.loads((files["dir"] / "a.json").read_text(encoding="utf-8"))
        assert again["scores"]["cats_f_per_type"] == report["scores"]["cats_f_per_type"], "same seed, same docs"


def test_distil_sample_and_evaluate_limit_pick_the_same_documents(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    sampled = files["dir"] / "sample.jsonl"
    code, output = cli(capsys, "sample", files["sorted"], sampled, "--n", "30", "--seed", "3")
    assert code == 0, output
    texts = [json.loads(line)["text"] for line in sampled.read_text(encoding="utf-8").splitlines()]
    expected = take_sample([json.loads(line)["text"] for line in files["sorted"].read_text().splitlines()], 30, seed=3)
    assert sorted(texts) == sorted(expected), "distil sample takes the same documents as evaluate --limit"
    assert texts != expected, "shuffled, not in corpus order: any head of the file is a random sample too"
    code, output = cli(capsys, "sample", "--help")
    assert "random" in output and "shuffled" in output


# --- finding 3: a missing encoder model fails at load, and no speed is reported for failures ---------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["evaluate", "{encoder}", "{ner_gold}", "--limit", "20"], ["nowhere", "distil train", "paths.model"]),
        (["compare", "--gold", "{ner_gold}", "-o", "{dir}/cmp", "rules={ner}", "student={encoder}"],
         ["student", "nowhere", "distil train", "nothing was run"]),
        (["evaluate", "{dir}/broken.cfg", "{ner_gold}"], ["every one of the 30 documents", "server is down"]),
        (["compare", "--gold", "{ner_gold}", "-o", "{dir}/cmp2", "ok={ner}", "broken={dir}/broken.cfg"],
         ["broken failed on every document", "no speed", "server is down"]),
    ],
)
def test_failures_stop_the_numbers(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], args: list[str], named: list[str]
) -> None:
    # A pipeline that fails on every document (its component raises): counted failures, not a speed.
    (files["dir"] / "broken.cfg").write_text(
        '[nlp]\nlang = "en"\npipeline = ["ner"]\n\n[components]\n\n[components.ner]\nfactory = "test_numbers_broken"\n'
    )
    code, output = cli(capsys, *fill(args, files))
    assert code == 1, output
    assert "Traceback" not in output
    for text in named:
        assert text in output, f"{text!r} not in {output!r}"
    if "nowhere" in named:
        assert "docs/s" not in output and "evaluating" not in output, "failed before any document ran"
    if args[0] == "evaluate" and "server is down" in named:
        assert "Speed: not reported" in output and "docs/s" not in output
    if args[0] == "compare" and "server is down" in named:
        rows = json.loads((files["dir"] / "cmp2" / "compare.json").read_text(encoding="utf-8"))["rows"]
        speeds = {row["pipeline"]: row["docs_per_second"] for row in rows}
        assert speeds["broken"] is None and speeds["ok"] > 0, "the other pipelines' results are kept"


# --- finding 15: compare checks every path and config before it runs anything ------------------------------------


@pytest.mark.parametrize(
    ("pipelines", "named"),
    [
        (["ok={ner}", "bad={dir}/missing.cfg"], ["bad={dir}/missing.cfg", "not found", "nothing was run"]),
        (["ok={ner}", "{dir}/missing_dir/"], ["not found", "missing_dir"]),
        (["ok={ner}", "bad={malformed}"], ["bad", "malformed.cfg", "nothing was run"]),
        (["ok={ner}", "ok={textcat}"], ["two pipelines are named 'ok'"]),
        (["ok={ner}", "=x.cfg"], ["NAME=PATH"]),
    ],
)
def test_compare_fails_before_running_anything(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], pipelines: list[str], named: list[str]
) -> None:
    out = files["dir"] / "cmp"
    code, output = cli(capsys, "compare", "--gold", files["ner_gold"], "-o", out, *fill(pipelines, files))
    assert code == 1, output
    assert "Traceback" not in output
    for text in fill(named, files):
        assert text in output, f"{text!r} not in {output!r}"
    assert "evaluating" not in output, "no pipeline may run before every argument is checked"
    assert not (out / "compare.json").exists()


def test_compare_checks_the_gold_file_before_loading_pipelines(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, output = cli(capsys, "compare", "--gold", files["dir"] / "nope.spacy", "-o", files["dir"] / "c", files["ner"])
    assert code == 1 and "gold file not found" in output and "nope.spacy" in output
    assert "loading" not in output and "Traceback" not in output


# --- finding 1: every pipeline is warmed up, then timed as the median of repeated runs -----------------------------


class _Counter:
    """An NER-task component that logs how many documents each call brings, under a shared log."""

    distil_task = "ner"

    def __init__(self, tag: str, log: list[tuple[str, int]], metered: bool = False) -> None:
        self.tag, self.log = tag, log
        if metered:  # the distil.protocols.ReportsUsage hooks, as an LLM model has them
            self.distil_usage = lambda: {"requests": 0}
            self.distil_reset_usage = lambda: None

    def __call__(self, doc: Doc) -> Doc:
        self.log.append((self.tag, 1))
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        batch = list(docs)
        self.log.append((self.tag, len(batch)))
        return iter(batch)


class _Broken:
    """An NER-task component that raises on every document, as one with a missing resource would."""

    distil_task = "ner"

    def __call__(self, doc: Doc) -> Doc:
        raise RuntimeError("the model server is down")


def counting_pipeline(name: str, log: list[tuple[str, int]], metered: bool = False) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("test_numbers_counter", config={"label": name, "metered": metered})
    nlp.get_pipe("test_numbers_counter").log = log  # type: ignore[attr-defined]
    return nlp


if not Language.has_factory("test_numbers_broken"):
    Language.factory("test_numbers_broken", func=lambda nlp, name: _Broken())
if not Language.has_factory("test_numbers_counter"):
    Language.factory(
        "test_numbers_counter",
        default_config={"label": "x", "metered": False},
        func=lambda nlp, name, label, metered: _Counter(label, [], metered),
    )

GOLDS = [spacy.blank("en").make_doc(f"text number {i}") for i in range(12)]


@pytest.mark.parametrize(
    ("kwargs", "calls", "repeats"),
    [
        # Warm-up (4 docs) before anything is timed, then 3 timed passes of the 12 docs.
        ({"warmup_docs": 4, "repeats": 3}, [4, 12, 12, 12], 3),
        # Latency docs one at a time after the warm-up, then 5 timed passes of the batched rest.
        ({"warmup_docs": 2, "repeats": 5, "latency_docs": 3}, [2, 1, 1, 1, 9, 9, 9, 9, 9], 5),
        # A metered (LLM) pipeline: no warm-up, one pass, every document exactly once.
        ({"warmup_docs": 4, "repeats": 3, "metered": True}, [12], 1),
    ],
)
def test_warm_up_comes_first_and_every_timed_run_counts(
    kwargs: dict[str, Any], calls: list[int], repeats: int
) -> None:
    log: list[tuple[str, int]] = []
    nlp = counting_pipeline("p", log, metered=kwargs.pop("metered", False))
    report = evaluate(nlp, GOLDS, gold_entities=False, min_run_seconds=0.0, **kwargs)
    assert [n for _, n in log] == calls
    assert report.timing["repeats"] == repeats == len(report.timing["runs_seconds"])
    assert report.speed["seconds"] == pytest.approx(statistics.median(report.timing["runs_seconds"]))
    assert report.n_docs == 12 and not report.failed_docs


def test_reported_seconds_are_the_median_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock: run i takes DURATIONS[i] seconds, so the median is known exactly.
    durations = iter([5.0, 1.0, 3.0])
    clock = [0.0]
    monkeypatch.setattr(evaluate_module.time, "perf_counter", lambda: clock[0])

    def one_pass(keep: bool, _: None) -> None:
        clock[0] += next(durations)

    runs = timed_runs(3, lambda: None, one_pass)
    assert [r.seconds for r in runs] == [5.0, 1.0, 3.0] and statistics.median(r.seconds for r in runs) == 3.0
    # A run repeats its pass until it lasts min_run_seconds and counts the mean pass.
    durations = iter([0.1, 0.2, 0.3, 0.4])
    runs = timed_runs(1, lambda: None, one_pass, min_run_seconds=0.55)
    assert runs[0].passes == 3 and runs[0].seconds == pytest.approx(0.2)


def test_compare_warms_every_pipeline_and_interleaves_its_timed_runs() -> None:
    log: list[tuple[str, int]] = []
    pipelines = [(name, counting_pipeline(name, log)) for name in ("a", "b", "c")]
    rows, reports = compare_pipelines(
        pipelines, GOLDS, latency_docs=0, repeats=3, warmup_docs=4, min_run_seconds=0.0
    )
    # Each pipeline: warm-up then its scored run, in list order; runs 2 and 3 go round all pipelines.
    assert log == [
        ("a", 4), ("a", 12), ("b", 4), ("b", 12), ("c", 4), ("c", 12),
        ("a", 12), ("b", 12), ("c", 12), ("a", 12), ("b", 12), ("c", 12),
    ]
    for name, report in reports.items():
        assert report.timing["repeats"] == 3 and report.timing["warmup_docs"] == 4
        row = next(r for r in rows if r.pipeline == name)
        assert row.docs_per_second == pytest.approx(12 / statistics.median(report.timing["runs_seconds"]))


def test_compare_cli_reports_its_timing_method(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    out = files["dir"] / "cmp"
    code, output = cli(capsys, "compare", "--gold", files["ner_gold"], "-o", out, "--latency-docs", "5",
                       "--repeats", "2", "a=" + str(files["ner"]), "b=" + str(files["ner"]))
    assert code == 0, output
    data = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    for report in data["reports"].values():
        assert report["timing"]["repeats"] == 2 and report["timing"]["warmup_docs"] == 10
    code, output = cli(capsys, "evaluate", files["ner"], files["ner_gold"])
    assert code == 0 and "median of 3 timed runs after 10 warm-up docs" in output
