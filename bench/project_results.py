"""The distillation headline from the projects' outputs: teacher vs students, and the review curve.

Reads what `python -m weasel run all projects/<name>` wrote
(``metrics/compare/compare.json`` and ``metrics/curve/compare.json``) and
prints, per task, the comparison table, the human-in-the-loop curve (student
score against the fraction of training documents reviewed, simulated) and the
verdict against the target: a student trained on teacher labels plus review
of at most 20% of the documents scores at least the teacher's accuracy on
gold, at 100x the teacher's documents per second or more. With ``--plot``
it also draws the curves (one panel per task, the teacher as a dashed line).

    python bench/project_results.py [--projects projects] [--plot docs/img/hitl_curve.png]

Ends with ``RESULT <task>_student20_minus_teacher=<points>`` and
``RESULT <task>_student20_speedup=<ratio>`` lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

PROJECTS = {"ner_wnut17": "ner", "textcat_banking77": "textcat", "rel_semeval": "rel"}
TEACHER, STUDENT = "teacher-llm", "student-reviewed"
CURVE = {"reviewed-0": 0, "reviewed-10": 10, "reviewed-20": 20, "reviewed-50": 50, "reviewed-100": 100}


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
    name: str, task: str, root: Path
) -> tuple[list[str], dict[str, float], list[tuple[int, float]], Optional[float]]:
    """Markdown lines, RESULT figures, curve points and the teacher's score (%) of one project."""
    compare = rows_of(root / name / "metrics" / "compare" / "compare.json", task)
    curve = rows_of(root / name / "metrics" / "curve" / "compare.json", task)
    lines = [f"### {name} ({task})", ""]
    if not compare:
        return [*lines, "(no results: run the project's `all` workflow)", ""], {}, [], None
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
    points = sorted((CURVE[p], r["score"] or 0.0) for p, r in curve.items() if p in CURVE)
    if points:
        lines += ["", "| % of training documents reviewed (simulated) | " + " | ".join(str(x) for x, _ in points) + " |",
                  "|---|" + "---:|" * len(points),
                  f"| student {metric} | " + " | ".join(pct(y) for _, y in points) + " |"]
    figures: dict[str, float] = {}
    teacher, student = compare.get(TEACHER), compare.get(STUDENT)
    if teacher and student and teacher["score"] is not None and student["score"] is not None:
        gain = 100 * (student["score"] - teacher["score"])
        speedup = student["docs_per_second"] / max(teacher["docs_per_second"], 1e-9)
        met = gain >= 0 and speedup >= 100
        figures = {f"{task}_student20_minus_teacher": gain, f"{task}_student20_speedup": speedup}
        lines += [
            "",
            f"Student with 20% reviewed vs teacher: {gain:+.1f} points, {speedup:,.0f}x documents per second "
            f"(target: ≥ 0 points at ≥ 100x): **{'met' if met else 'missed'}**.",
        ]
    teacher_score = 100 * teacher["score"] if teacher and teacher["score"] is not None else None
    return [*lines, ""], figures, points, teacher_score


def plot(curves: dict[str, tuple[list[tuple[int, float]], Optional[float]]], path: Path) -> None:
    """Student score against % reviewed, one panel per task; the teacher's score dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.6), squeeze=False)
    for ax, (title, (points, teacher)) in zip(axes[0], curves.items(), strict=True):
        if points:
            ax.plot([x for x, _ in points], [100 * y for _, y in points], marker="o", label="student (int8)")
        if teacher is not None:
            ax.axhline(teacher, linestyle="--", color="grey", label="LLM teacher")
        ax.set_title(title)
        ax.set_xlabel("% of training docs reviewed (simulated)")
        ax.set_ylabel("score on gold test (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
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
    curves: dict[str, tuple[list[tuple[int, float]], Optional[float]]] = {}
    for name, task in PROJECTS.items():
        lines, figures, points, teacher_score = task_report(name, task, args.projects)
        print("\n".join(lines))
        results.update(figures)
        curves[name] = (points, teacher_score)
    if args.plot:
        plot(curves, args.plot)
        print(f"wrote {args.plot}")
    for key, value in results.items():
        print(f"RESULT {key}={value:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
