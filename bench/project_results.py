"""The distillation headline from the projects' outputs: teacher vs students, and the review curve.

Reads what `python -m weasel run all projects/<name>` wrote
(``metrics/compare/compare.json`` and ``metrics/curve/compare.json``) and
prints, per task, the comparison table, the human-in-the-loop curves (student
score against the fraction of training documents reviewed, simulated) and the
verdicts against the targets of issue 11, at 20% reviewed:

- the distilled student (teacher labels + review, least confident first)
  scores at least the teacher's accuracy on gold, at 100x the teacher's
  documents per second or more;
- it beats the same review in ``random`` order (the review order earns its
  keep);
- it beats a student trained on the human labels alone: the seed pool plus
  the same number of reviewed documents, chosen at random, without any
  teacher label (the LLM's labels earn their keep).

Three curves per task: ``reviewed`` (teacher order), ``random`` and ``human``
(human labels alone). At 0% the ``random`` line is the ``reviewed`` one (no
document reviewed) and ``human`` is the seed pool alone; at 100% every line
is the student trained on all the gold labels. With ``--plot`` it also draws
the curves (one panel per task, the teacher as a dashed line).

    python bench/project_results.py [--projects projects] [--plot docs/img/hitl_curve.png]

Ends with ``RESULT <task>_student20_minus_teacher=<points>``,
``RESULT <task>_student20_speedup=<ratio>``,
``RESULT <task>_student20_minus_random20=<points>`` and
``RESULT <task>_student20_minus_human20=<points>`` lines, and
``RESULT <task>_disagreement20_minus_random20=<points>`` where the project's
``disagreement`` step ran (the teacher-vs-rules order against random); the
FIRE project's lines start with ``fire_rel_``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

# project: (the task whose compare rows it reports, the prefix of its RESULT lines)
PROJECTS = {"ner_wnut17": ("ner", "ner"), "textcat_banking77": ("textcat", "textcat"), "rel_semeval": ("rel", "rel"),
            "rel_fire": ("rel", "fire_rel")}
TEACHER, STUDENT = "teacher-llm", "student-reviewed"
# the skeptic's baselines at 20% reviewed, rows of the compare table
BASELINES = {"random20": "student-reviewed-random", "human20": "student-human-only"}
# the curve rows are named <series>-<percent reviewed>
SERIES = {"reviewed": "teacher labels + review, least confident first", "random": "teacher labels + review, random order",
          "human": "human labels alone (seed pool + random review)"}
Curves = dict[str, list[tuple[int, float]]]


def curves_of(rows: dict[str, dict[str, Any]]) -> Curves:
    """The curve rows as ``{series: [(percent, score)]}``, with the shared end points filled in (see the docstring)."""
    points: dict[str, dict[int, float]] = {series: {} for series in SERIES}
    for name, row in rows.items():
        series, _, share = name.rpartition("-")
        if series in points and share.isdigit() and row["score"] is not None:
            points[series][int(share)] = row["score"]
    reviewed = points["reviewed"]
    if 0 in reviewed:
        points["random"].setdefault(0, reviewed[0])
    if 100 in reviewed:
        points["random"].setdefault(100, reviewed[100])
        points["human"].setdefault(100, reviewed[100])
    return {series: sorted(found.items()) for series, found in points.items() if found}


def rows_of(path: Path, task: str) -> dict[str, dict[str, Any]]:
    """The compare rows of one task, by pipeline name (empty if the file is missing)."""
    if not path.exists():
        return {}
    return {row["pipeline"]: row for row in json.loads(path.read_text())["rows"] if row["task"] == task}


def pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def num(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def task_report(
    name: str, task: str, root: Path, prefix: Optional[str] = None
) -> tuple[list[str], dict[str, float], Curves, Optional[float]]:
    """Markdown lines, RESULT figures (named ``<prefix>_...``, the task by default), curves and the teacher's score (%)."""
    prefix = prefix or task
    compare = rows_of(root / name / "metrics" / "compare" / "compare.json", task)
    curve = rows_of(root / name / "metrics" / "curve" / "compare.json", task)
    lines = [f"### {name} ({task})", ""]
    if not compare:
        return [*lines, "(no results: run the project's `all` workflow)", ""], {}, {}, None
    metric = next(iter(compare.values()))["metric"]
    lines += [
        f"| pipeline | {metric} | docs/s | p95 ms/doc | model MB | cost / 1k docs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(compare.values(), key=lambda r: -(r["score"] or 0.0)):
        cost = "–" if row.get("cost_per_1k_docs") is None else f"${row['cost_per_1k_docs']:.4f}"
        lines.append(
            f"| {row['pipeline']} | {pct(row['score'])} | {num(row['docs_per_second'])} | "
            f"{num(row.get('p95_latency_ms'))} | {num(row.get('model_mb'), 0)} | {cost} |"
        )
    curves = curves_of(curve)
    shares = sorted({x for points in curves.values() for x, _ in points})
    if shares:
        lines += ["", f"| student {metric}, % of training documents reviewed (simulated) | "
                  + " | ".join(str(x) for x in shares) + " |", "|---|" + "---:|" * len(shares)]
        for series, points in curves.items():
            found = dict(points)
            lines.append(f"| {SERIES[series]} | " + " | ".join(pct(found.get(x)) for x in shares) + " |")
    figures: dict[str, float] = {}
    teacher, student = compare.get(TEACHER), compare.get(STUDENT)
    if teacher and student and teacher["score"] is not None and student["score"] is not None:
        gain = 100 * (student["score"] - teacher["score"])
        speedup = student["docs_per_second"] / max(teacher["docs_per_second"], 1e-9)
        met = gain >= 0 and speedup >= 100
        figures = {f"{prefix}_student20_minus_teacher": gain, f"{prefix}_student20_speedup": speedup}
        lines += [
            "",
            f"Student with 20% reviewed vs teacher: {gain:+.1f} points, {speedup:,.0f}x documents per second "
            f"(target: ≥ 0 points at ≥ 100x): **{'met' if met else 'missed'}**.",
        ]
        for key, row_name in BASELINES.items():
            baseline = compare.get(row_name)
            if baseline is None or baseline["score"] is None:
                continue
            margin = 100 * (student["score"] - baseline["score"])
            figures[f"{prefix}_student20_minus_{key}"] = margin
            lines.append(f"Student with 20% reviewed vs {row_name}: {margin:+.1f} points (target: > 0): "
                         f"**{'met' if margin > 0 else 'missed'}**.")
    orders = rows_of(root / name / "metrics" / "orders" / "compare.json", task)
    if orders:
        lines += ["", "| review order at 20% (the `disagreement` step) | " + " | ".join(orders) + " |",
                  "|---|" + "---:|" * len(orders),
                  f"| student {metric} | " + " | ".join(pct(row["score"]) for row in orders.values()) + " |"]
        random_row, disputed = orders.get("random"), orders.get("disagreement")
        if random_row and disputed and random_row["score"] is not None and disputed["score"] is not None:
            figures[f"{prefix}_disagreement20_minus_random20"] = 100 * (disputed["score"] - random_row["score"])
    teacher_score = 100 * teacher["score"] if teacher and teacher["score"] is not None else None
    return [*lines, ""], figures, curves, teacher_score


def plot(panels: dict[str, tuple[Curves, Optional[float]]], path: Path) -> None:
    """Student scores against % reviewed, one panel per task and a line per series; the teacher's score dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False)
    markers = {"reviewed": "o", "random": "s", "human": "^"}
    for ax, (title, (curves, teacher)) in zip(axes[0], panels.items(), strict=True):
        for series, points in curves.items():
            ax.plot([x for x, _ in points], [100 * y for _, y in points], marker=markers[series], label=SERIES[series])
        if teacher is not None:
            ax.axhline(teacher, linestyle="--", color="grey", label="LLM teacher")
        ax.set_title(title)
        ax.set_xlabel("% of training docs reviewed (simulated)")
        ax.set_ylabel("score on gold test (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=Path, default=Path("projects"))
    parser.add_argument("--plot", type=Path, help="Write the review curves here (PNG).")
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    panels: dict[str, tuple[Curves, Optional[float]]] = {}
    for name, (task, prefix) in PROJECTS.items():
        lines, figures, curves, teacher_score = task_report(name, task, args.projects, prefix)
        print("\n".join(lines))
        results.update(figures)
        panels[name] = (curves, teacher_score)
    if args.plot:
        plot(panels, args.plot)
        print(f"wrote {args.plot}")
    for key, value in results.items():
        print(f"RESULT {key}={value:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
