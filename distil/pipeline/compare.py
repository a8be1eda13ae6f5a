"""Compare pipelines side by side on the same gold Docs: accuracy, speed, latency, cost.

Each pipeline is evaluated with :func:`distil.pipeline.evaluate.evaluate` on the
same gold documents in the same process, one after the other, so the numbers
are comparable: every pipeline is warmed up before it is timed and its speed is
the median of repeated runs (the method of ``evaluate``), taken in rounds (run 2
of every pipeline, then run 3...) so that neither its place in the list nor a
change in the machine's load during the comparison changes its speed. The result is one row per pipeline and task,
written as Markdown and JSON, and a plot of accuracy against throughput.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from spacy.language import Language
from spacy.tokens import Doc

# HEADLINE is the metric per task the table sorts and plots by: the one `distil train` early-stops on.
from ..scoring import HEADLINE, SEMEVAL_HEADLINE
from .evaluate import (
    DEFAULT_MIN_RUN_SECONDS,
    DEFAULT_REPEATS,
    DEFAULT_WARMUP_DOCS,
    EvalReport,
    add_timed_runs,
    evaluate,
)
from .parts import model_size_bytes

# Relations predicted over the pipeline's own entities are ranked by the strict end-to-end figure instead.
STRICT_REL = "rel_strict_micro_f"

@dataclass
class Row:
    """One pipeline's figures on one task."""

    pipeline: str
    task: str
    metric: str
    score: Optional[float]
    p: Optional[float]
    r: Optional[float]
    # None when the pipeline failed on every document: a speed of failures means nothing.
    docs_per_second: Optional[float]
    words_per_second: Optional[float]
    p95_latency_ms: Optional[float]
    cost_per_1k_docs: Optional[float]
    failures: int
    # Weight files the pipeline runs (ONNX, GGUF): None when no component reports any (rules, a remote LLM).
    model_mb: Optional[float] = None


def _cost(report: EvalReport) -> Optional[float]:
    costs = [figures.get("cost") for figures in report.usage.values()]
    known = [float(c) for c in costs if isinstance(c, (int, float))]
    if not known:
        return None
    return 1000 * sum(known) / max(report.n_docs, 1)


def rows_of(name: str, nlp: Language, report: EvalReport, *, semeval_official: bool = False) -> list[Row]:
    """The comparison rows (one per task) of one pipeline's evaluation report."""
    p95 = report.speed.get("p95_latency_ms")
    size = model_size_bytes(nlp)
    rows = []
    failures = sum(report.failures.values()) + len(report.failed_docs)
    for task in report.tasks:
        key, _ = SEMEVAL_HEADLINE if task == "rel" and semeval_official else HEADLINE[task]
        if task == "rel" and not report.gold_entities and STRICT_REL in report.scores:
            # A pipeline that finds its own entities is ranked end to end: a relation counts only with both
            # entity spans and types right, as users of `ner` then `rel` get it.
            key = STRICT_REL
        prefix = key.rsplit("_", 1)[0]
        rows.append(
            Row(
                pipeline=name,
                task=task,
                metric=key,
                score=report.scores.get(key),
                p=report.scores.get(f"{prefix}_p"),
                r=report.scores.get(f"{prefix}_r"),
                docs_per_second=report.speed.get("docs_per_second"),
                words_per_second=report.speed.get("words_per_second"),
                p95_latency_ms=p95,
                cost_per_1k_docs=_cost(report),
                failures=failures,
                model_mb=size / 1e6 if size else None,
            )
        )
    return rows


def compare_one(
    name: str,
    nlp: Language,
    golds: Sequence[Doc],
    *,
    semeval_official: bool = False,
    latency_docs: int = 20,
    batch_size: int = 64,
    response_cache: bool = False,
    repeats: int = DEFAULT_REPEATS,
    warmup_docs: int = DEFAULT_WARMUP_DOCS,
    min_run_seconds: float = DEFAULT_MIN_RUN_SECONDS,
) -> tuple[list[Row], EvalReport]:
    """Evaluate one pipeline and turn its report into rows (one per task).

    LLM response caches are off unless ``response_cache``: a comparison is
    about speed and cost as much as accuracy. Speed is measured as
    :func:`distil.pipeline.evaluate.evaluate` does (``warmup_docs`` untimed
    documents, the median of ``repeats`` runs of at least ``min_run_seconds``;
    one run for LLM pipelines). To compare several pipelines, use
    :func:`compare_pipelines`, which interleaves their timed runs.
    """
    report = evaluate(
        nlp,
        golds,
        semeval_official=semeval_official,
        batch_size=batch_size,
        latency_docs=latency_docs,
        response_cache=response_cache,
        repeats=repeats,
        warmup_docs=warmup_docs,
        min_run_seconds=min_run_seconds,
    )
    return rows_of(name, nlp, report, semeval_official=semeval_official), report


def compare_pipelines(
    pipelines: Sequence[tuple[str, Language]],
    golds: Sequence[Doc],
    *,
    semeval_official: bool = False,
    latency_docs: int = 20,
    batch_size: int = 64,
    response_cache: bool = False,
    repeats: int = DEFAULT_REPEATS,
    warmup_docs: int = DEFAULT_WARMUP_DOCS,
    min_run_seconds: float = DEFAULT_MIN_RUN_SECONDS,
    on_start: Callable[[str], None] | None = None,
) -> tuple[list[Row], dict[str, EvalReport]]:
    """Evaluate every ``(name, nlp)`` on the same gold Docs and return the rows and the report of each.

    Each pipeline is evaluated (warm-up, latency, the scored and first timed
    run) in list order; then the remaining ``repeats - 1`` timed runs go in
    rounds over all pipelines (:func:`distil.pipeline.evaluate.add_timed_runs`),
    so a change in the machine's load hits every pipeline alike and each
    speed is the median of its runs. ``on_start(name)`` is called before each
    evaluation (progress messages).
    """
    reports: dict[str, EvalReport] = {}
    for name, nlp in pipelines:
        if on_start is not None:
            on_start(name)
        reports[name] = evaluate(
            nlp,
            golds,
            semeval_official=semeval_official,
            batch_size=batch_size,
            latency_docs=latency_docs,
            response_cache=response_cache,
            repeats=1,
            warmup_docs=warmup_docs,
            min_run_seconds=min_run_seconds,
        )
    for _ in range(repeats - 1):
        for name, nlp in pipelines:
            add_timed_runs(nlp, golds, reports[name])
    rows = [row for name, nlp in pipelines for row in rows_of(name, nlp, reports[name], semeval_official=semeval_official)]
    return rows, reports


def _fmt(value: Optional[float], pct: bool = False, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.{digits}f}" if pct else f"{value:,.{digits}f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """The comparison as a Markdown table, grouped by task, best score first."""
    lines = []
    for task in dict.fromkeys(r.task for r in rows):
        task_rows = sorted((r for r in rows if r.task == task), key=lambda r: -(r.score or 0.0))
        metric = task_rows[0].metric
        lines += [
            f"### {task} ({metric})",
            "",
            "| pipeline | P | R | score | docs/s | words/s | p95 ms/doc | cost / 1k docs | model MB | failures |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in task_rows:
            cost = "–" if r.cost_per_1k_docs is None else f"${r.cost_per_1k_docs:.4f}"
            lines.append(
                f"| {r.pipeline} | {_fmt(r.p, True)} | {_fmt(r.r, True)} | **{_fmt(r.score, True)}** | "
                f"{_fmt(r.docs_per_second)} | {_fmt(r.words_per_second, digits=0)} | {_fmt(r.p95_latency_ms)} | "
                f"{cost} | {_fmt(r.model_mb, digits=0)} | {r.failures} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: Path) -> None:
    """Accuracy against documents per second (log axis), one labelled point per pipeline, a panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        # A pipeline that failed on every document has no speed: it has no place on a speed axis.
        task_rows = [r for r in rows if r.task == task and r.docs_per_second is not None]
        # Labels alternate above and below their points, so neighbours with close scores stay readable.
        for i, r in enumerate(sorted(task_rows, key=lambda row: row.score or 0.0)):
            x, y = max(r.docs_per_second or 0.0, 1e-3), 100 * (r.score or 0.0)
            ax.scatter([x], [y], s=40)
            ax.annotate(r.pipeline, (x, y), textcoords="offset points", xytext=(5, 5 if i % 2 else -11), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("documents per second (log)")
        ax.set_ylabel(f"{task_rows[0].metric if task_rows else task} (%)")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(rows: Sequence[Row], reports: dict[str, EvalReport], output: Path) -> dict[str, Path]:
    """Write ``compare.md``, ``compare.json`` and ``compare.png`` into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": output / "compare.md", "json": output / "compare.json", "plot": output / "compare.png"}
    paths["markdown"].write_text(markdown_table(rows), encoding="utf-8")
    data: dict[str, Any] = {
        "rows": [asdict(r) for r in rows],
        "reports": {name: report.to_dict() for name, report in reports.items()},
    }
    paths["json"].write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    plot(rows, paths["plot"])
    return paths

