"""``distil evaluate``: score a pipeline against gold documents and print a table (and a JSON report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ...corpus import CorpusError, read_docs
from ..config import ConfigError, load_pipeline
from ..evaluate import DEFAULT_REPEATS, DEFAULT_WARMUP_DOCS, EvalReport, evaluate
from ..sample import take_sample
from .app import OVERRIDES_CONTEXT, app
from .overrides import fail, split_overrides


@app.command("evaluate", context_settings=OVERRIDES_CONTEXT)
def evaluate_command(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Pipeline config (.cfg) or a directory saved with nlp.to_disk."),
    gold: Path = typer.Argument(..., help="Gold documents: .spacy (DocBin) or .jsonl records (see distil convert)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the full report as JSON here."),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        help="Evaluate on N gold documents drawn at random with --seed (not the first N: gold files are often "
        "sorted by label), kept in file order; the same as `distil sample --n N --seed S`.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit sample: the same seed gives the same documents."),
    semeval_official: bool = typer.Option(
        False, "--semeval-official", help="Add the official SemEval-2010 Task 8 measure (two entities per doc)."
    ),
    gold_entities: bool | None = typer.Option(
        None,
        "--gold-entities/--no-gold-entities",
        help="Give the gold entities to the pipeline. Default: only when it extracts relations but no entities.",
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Documents per nlp.pipe batch."),
    latency_docs: int = typer.Option(
        0, "--latency-docs", min=0, help="Run the first N docs one at a time and report p50/p95 latency per doc."
    ),
    cache: bool = typer.Option(
        True, "--cache/--no-cache", help="Let LLM components answer from their response cache (a note counts the hits)."
    ),
    repeats: int = typer.Option(
        DEFAULT_REPEATS, "--repeats", min=1, help="Timed runs of the throughput pass; speed is their median (LLM: 1)."
    ),
    warmup_docs: int = typer.Option(
        DEFAULT_WARMUP_DOCS, "--warmup-docs", min=0, help="Documents run untimed before timing starts (LLM: 0)."
    ),
) -> None:
    """Score a pipeline on gold documents: P/R/F per task and label, speed, failures.

    Entities, categories and relations are scored for each task the pipeline
    performs. Config overrides go after the options, spaCy style. --limit
    takes a seeded random sample, never the first N documents. Speed is the
    median of --repeats timed runs after --warmup-docs untimed documents (one
    pass and no warm-up for LLM pipelines: see docs/compare.md). Answers
    from an LLM response cache make the speed and cost figures meaningless: a
    note says how many there were; --no-cache measures the model itself.
    When every document fails, the command exits 1 and reports no speed.

    Example: distil evaluate configs/ner_rules.cfg wnut_test.spacy --output report.json --limit 500 --seed 0
    """
    try:
        extra, overrides = split_overrides(list(ctx.args))
        if extra:
            raise ConfigError(f"unexpected argument(s) {' '.join(extra)!r}: evaluate takes CONFIG and GOLD only")
        if not gold.exists():
            raise CorpusError(f"gold file not found: {gold}")
        nlp = load_pipeline(config, overrides)
        all_golds = list(read_docs(gold, nlp))
    except (ConfigError, CorpusError) as err:
        raise fail(str(err)) from None
    if not all_golds:
        raise fail(f"{gold}: no gold documents: nothing to evaluate")
    golds = take_sample(all_golds, limit, seed=seed)
    try:
        report = evaluate(
            nlp,
            golds,
            gold_entities="auto" if gold_entities is None else gold_entities,
            semeval_official=semeval_official,
            batch_size=batch_size,
            latency_docs=latency_docs,
            response_cache=cache,
            repeats=repeats,
            warmup_docs=warmup_docs,
        )
    except ValueError as err:
        raise fail(str(err)) from None
    sampled = len(golds) < len(all_golds)
    if sampled:
        report.notes.insert(0, f"a random sample of {len(golds)} of {len(all_golds)} gold documents (--seed {seed})")
    typer.echo(format_report(report, title=f"{config} on {gold}"))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        sample = {"n": len(golds), "of": len(all_golds), "seed": seed} if sampled else None
        data = {"config": str(config), "gold": str(gold), "overrides": overrides, "sample": sample, **report.to_dict()}
        output.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        typer.echo(f"report written to {output}", err=True)
    if report.all_failed:
        first = report.failed_docs[0]
        raise fail(
            f"{config}: the pipeline failed on every one of the {report.n_docs} documents (doc {first.index}: "
            f"{first.reason}); fix the pipeline before reading any score or speed"
        )


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}"


def _prf_rows(name: str, p: Any, r: Any, f: Any) -> str:
    return f"  {name:<38} {_pct(p):>7} {_pct(r):>7} {_pct(f):>7}"


def _per_type(title: str, per_type: dict[str, dict[str, float]] | None) -> list[str]:
    if not per_type:
        return []
    lines = [f"  {title}"]
    for label in sorted(per_type):
        prf = per_type[label]
        lines.append(_prf_rows(f"  {label}", prf.get("p"), prf.get("r"), prf.get("f")))
    return lines


def _calibration(scores: dict[str, Any], prefix: str, what: str) -> list[str]:
    """The calibration line of a task: its expected calibration error, or "no scores" (docs/evaluate.md)."""
    if f"{prefix}_ece" not in scores:
        return []
    details = scores.get(f"{prefix}_calibration") or {}
    if scores[f"{prefix}_ece"] is None:
        return [f"  {'calibration (ECE)':<38} no scores (the predictions carry none)"]
    unscored = int(details.get("unscored") or 0)
    extra = f", {unscored} unscored left out" if unscored else ""
    return [
        f"  {'calibration (ECE, 10 bins)':<38} {_pct(scores[f'{prefix}_ece']):>7}   "
        f"over {details.get('n')} scored {what}, mean score {_pct(details.get('mean_score'))}, "
        f"accuracy {_pct(details.get('accuracy'))}{extra}"
    ]


def timing_method(timing: dict[str, Any]) -> str:
    """How the speed was measured, in words: warm-up documents and the statistic over the timed runs."""
    if not timing:
        return "one timed run"
    runs = int(timing.get("repeats", 1))
    method = f"median of {runs} timed runs" if runs > 1 else "one timed run"
    warmup = int(timing.get("warmup_docs", 0))
    method += f" after {warmup} warm-up docs" if warmup else ", no warm-up"
    if timing.get("metered"):
        method += " (the pipeline calls a metered model)"
    return method


def format_report(report: EvalReport, title: str = "") -> str:
    """The report as a readable table: overall and per-label P/R/F per task (in %), speed, failures."""
    s = report.scores
    header = f"  {'':<38} {'P':>7} {'R':>7} {'F':>7}"
    lines = [f"distil evaluate: {title}" if title else "distil evaluate"]
    components = ", ".join(f"{name} ({task})" for name, task in report.components.items())
    lines.append(f"  {report.n_docs} docs, {report.n_words} words; components: {components}")
    if report.gold_entities:
        lines.append("  gold entities were given to the pipeline (entities not scored)")
    if "ents_f" in s:
        lines += ["", "Entities", header, _prf_rows("overall (micro)", s["ents_p"], s["ents_r"], s["ents_f"])]
        lines += _calibration(s, "ents", "entities")
        lines += _per_type("per label", s.get("ents_per_type"))
    if "cats_macro_f" in s:
        lines += ["", f"Categories (accuracy {_pct(s.get('cats_accuracy'))} over {s.get('cats_docs')} docs)", header]
        lines.append(_prf_rows("macro", s["cats_macro_p"], s["cats_macro_r"], s["cats_macro_f"]))
        lines.append(_prf_rows("micro", s["cats_micro_p"], s["cats_micro_r"], s["cats_micro_f"]))
        lines += _calibration(s, "cats", "category decisions")
        lines += _per_type("per label", s.get("cats_f_per_type"))
    if "rel_micro_f" in s:
        lines += ["", "Relations", header]
        lines.append(_prf_rows("micro", s["rel_micro_p"], s["rel_micro_r"], s["rel_micro_f"]))
        lines.append(_prf_rows("macro", s["rel_macro_p"], s["rel_macro_r"], s["rel_macro_f"]))
        if s.get("rel_strict_micro_f") is not None:
            # Strict end to end: both spans, both entity types and the relation type right.
            lines.append(_prf_rows(
                "strict micro (spans + entity types)", s["rel_strict_micro_p"], s["rel_strict_micro_r"],
                s["rel_strict_micro_f"],
            ))
        if s.get("rel_gold_ents_micro_f") is not None:
            # The same documents with gold entities given: the gap to "micro" is what NER errors cost.
            lines.append(_prf_rows(
                "micro, gold entities given", s["rel_gold_ents_micro_p"], s["rel_gold_ents_micro_r"],
                s["rel_gold_ents_micro_f"],
            ))
        lines += _calibration(s, "rel", "relations")
        lines += _per_type("per label", s.get("rel_per_type"))
    if "rel_semeval_macro_f" in s:
        lines += ["", f"SemEval-2010 Task 8 official measure ({s.get('rel_semeval_docs')} docs)", header]
        lines.append(_prf_rows(
            "macro, 9 types, directed (official)",
            s["rel_semeval_macro_p"], s["rel_semeval_macro_r"], s["rel_semeval_macro_f"],
        ))
        lines.append(_prf_rows("micro", s["rel_semeval_micro_p"], s["rel_semeval_micro_r"], s["rel_semeval_micro_f"]))
        lines.append(f"  {'accuracy (directed, incl. Other)':<38} {_pct(s.get('rel_semeval_accuracy')):>7}")
        lines += _per_type("per type", s.get("rel_semeval_per_type"))
    speed = report.speed
    lines.append("")
    if speed:
        lines.append(
            f"Speed: {speed['docs_per_second']:.1f} docs/s, {speed['words_per_second']:.0f} words/s "
            f"({speed['seconds']:.2f} s for the pipeline run; {timing_method(report.timing)})"
        )
    else:
        lines.append("Speed: not reported (every document failed)")
    if "p95_latency_ms" in speed:
        lines.append(
            f"Latency per doc (one at a time, {speed['latency_docs']:.0f} docs): "
            f"p50 {speed['p50_latency_ms']:.1f} ms, p95 {speed['p95_latency_ms']:.1f} ms"
        )
    failed = f"Failed docs: {len(report.failed_docs)}"
    for item in report.failed_docs[:5]:
        failed += f"\n  doc {item.index}{f' (id {item.id})' if item.id else ''}: {item.reason}"
    if len(report.failed_docs) > 5:
        failed += f"\n  ... and {len(report.failed_docs) - 5} more (see the JSON report)"
    lines.append(failed)
    if report.failures:
        lines.append("Component failures: " + ", ".join(f"{kind} {n}" for kind, n in report.failures.items()))
    for name, figures in report.usage.items():
        lines.append(f"Usage [{name}]: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
    lines += [f"Note: {note}" for note in report.notes]
    return "\n".join(lines)
