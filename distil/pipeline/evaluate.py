"""Evaluate a pipeline against gold documents: accuracy per task, speed, failures.

:func:`evaluate` runs the pipeline over the texts of gold Docs and scores each
task the pipeline performs (found with :func:`distil.pipeline.tasks.pipeline_tasks`):
entities with spaCy's NER scorer, categories with spaCy's category semantics,
relations by (head span, tail span, label) and optionally with the official
SemEval-2010 Task 8 measure. A document the pipeline fails on is counted (with
its reason) and scored as an empty prediction, so a crash costs recall instead
of vanishing from the denominator.

Relations end to end (a pipeline that finds its own entities) are scored twice:
as predicted (``rel_micro_f``, and ``rel_strict_micro_f`` where entity types
must match too), and again with the gold entities given to the relation
component on the same documents (``rel_gold_ents_micro_f``...), so that the
gap between the two shows how many relation errors come from NER.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc

from ..annotations import EntityPrediction, write_entities
from ..latency import percentile
from ..protocols import ReportsUsage
from ..records import META_KEY
from ..schemas import RELSchema, TextCatSchema
from ..scoring import (
    OTHER,
    category_calibration,
    entity_calibration,
    relation_calibration,
    score_categories,
    score_entities,
    score_relations,
    score_semeval,
    semeval_answers,
    symmetric_labels,
)
from .batch import DocError, process
from .parts import component_parts, response_caches_off
from .tasks import pipeline_tasks
from .usage import collect_usage

GoldEntities = bool | Literal["auto"]
P = TypeVar("P")

# The timing method shared by `distil evaluate` and `distil compare` (docs/compare.md, "How speed is measured").
DEFAULT_REPEATS = 3
DEFAULT_WARMUP_DOCS = 10
# A pass of a rules pipeline over 200 documents takes ~10 ms, a few scheduler ticks: alone it measures the
# machine's noise more than the pipeline. A timed run repeats the pass until it has lasted this long.
DEFAULT_MIN_RUN_SECONDS = 0.5


@dataclass
class TimedRun:
    """One timed run: the seconds per pass over the documents, and how many passes it averaged."""

    seconds: float
    passes: int


def timed_runs(
    repeats: int,
    prepare: Callable[[], P],
    run: Callable[[bool, P], object],
    *,
    min_run_seconds: float = 0.0,
) -> list[TimedRun]:
    """Time ``repeats`` runs of a pass over the documents; only ``run`` is on the clock, never ``prepare``.

    The one timing helper of evaluation and comparison: callers report the
    median of the runs, so one slow run (a scheduler hiccup, a cold cache) does
    not decide the figure. Each run repeats the pass ``run(keep, prepare())``
    until it has lasted ``min_run_seconds`` (at least once) and counts the mean
    seconds per pass; ``keep`` is True on the very first pass only, whose
    output the caller keeps. ``prepare`` builds a pass's inputs off the clock
    (a pipeline writes into its input Docs, so each pass needs fresh ones).
    """
    runs: list[TimedRun] = []
    for i in range(repeats):
        total, passes = 0.0, 0
        while passes == 0 or total < min_run_seconds:
            prepared = prepare()
            start = time.perf_counter()
            run(i == 0 and passes == 0, prepared)
            total += time.perf_counter() - start
            passes += 1
        runs.append(TimedRun(total / passes, passes))
    return runs


def is_metered(nlp: Language) -> bool:
    """Whether a component reports usage (``distil_usage``: the LLM backends), i.e. each document is a paid or slow call.

    Such pipelines are timed on one pass with no warm-up: extra passes would
    multiply the cost and, with a response cache, time the cache instead of
    the model.
    """
    return any(isinstance(part, ReportsUsage) for _, pipe in nlp.pipeline for part in component_parts(pipe))


@dataclass
class FailedDoc:
    """A gold document the pipeline raised on."""

    index: int
    id: str | None
    reason: str


@dataclass
class EvalReport:
    """What :func:`evaluate` measured; ``to_dict()`` is the JSON report.

    ``scores`` holds flat spaCy-style keys (``ents_f``, ``cats_macro_f``,
    ``rel_micro_f``, ``rel_semeval_macro_f``...); ``speed`` holds
    ``seconds`` (the median timed run), ``docs_per_second`` and
    ``words_per_second`` of the pipeline run alone, and is empty when every
    document failed (a speed of failures means nothing); ``timing`` says how
    it was measured (warm-up documents, repeats, the seconds of each run);
    ``failures`` counts ``doc._.failures`` by kind; ``usage`` holds what
    components that track cost report (LLM requests, tokens) per component.
    """

    components: dict[str, str]
    gold_entities: bool
    n_docs: int
    n_words: int
    scores: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, float] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    failed_docs: list[FailedDoc] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        """Whether the pipeline raised on every document: its scores and speed then mean nothing."""
        return self.n_docs > 0 and len(self.failed_docs) == self.n_docs

    @property
    def tasks(self) -> list[str]:
        """The tasks scored, in pipeline order without repeats."""
        return list(dict.fromkeys(self.components.values()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form of the report."""
        data = asdict(self)
        data["tasks"] = self.tasks
        data["n_failed_docs"] = len(self.failed_docs)
        return data


def _schema_of(pipe: Any, cls: type[Any]) -> Any:
    for part in component_parts(pipe):
        for name in ("schema", "_schema"):
            value = getattr(part, name, None)
            if isinstance(value, cls):
                return value
    return None


def _category_settings(
    nlp: Language, names: Sequence[str], pairs: Sequence[tuple[Doc, Doc]]
) -> tuple[list[str], bool, float]:
    """Labels, exclusivity and threshold for scoring cats: from the schema, else spaCy's component, else the data."""
    for name in names:
        pipe = nlp.get_pipe(name)
        schema = _schema_of(pipe, TextCatSchema)
        if schema is not None:
            return list(schema.label_names), schema.exclusive, schema.threshold
        if isinstance(pipe, TextCategorizer):
            exclusive = type(pipe).__name__ == "TextCategorizer"
            return list(pipe.labels), exclusive, float(pipe.cfg.get("threshold", 0.5) or 0.5)
    labels: dict[str, None] = {}
    exclusive = True
    for predicted, gold in pairs:
        labels.update(dict.fromkeys(gold.cats))
        labels.update(dict.fromkeys(predicted.cats))
        if sum(1 for v in gold.cats.values() if v > 0) > 1:
            exclusive = False
    return list(labels), exclusive, 0.5


def _symmetric_labels(nlp: Language, names: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        schema = _schema_of(nlp.get_pipe(name), RELSchema)
        if schema is not None:
            out.update(symmetric_labels(schema))
    return out


def _cache_hits(usage: dict[str, dict[str, Any]]) -> int:
    return sum(int(figures.get("cache_hits") or 0) for figures in usage.values())


def _with_gold_entities(nlp: Language, gold: Doc) -> Doc:
    doc = nlp.make_doc(gold.text)
    write_entities(doc, [EntityPrediction(e.start_char, e.end_char, e.label_) for e in gold.ents], overlap="longest")
    return doc


def _relations_with_gold_entities(
    nlp: Language, golds: Sequence[Doc], entity_components: Sequence[str], batch_size: int, symmetric: set[str]
) -> dict[str, Any]:
    """Relation scores of ``nlp`` with its entity components off and the gold entities on its input Docs.

    The keys are :func:`~distil.scoring.score_relations`' with ``rel_``
    replaced by ``rel_gold_ents_`` (the strict measure is left out: with gold
    entities it equals the plain one). A document that fails scores as an
    empty prediction, as in the main pass.
    """
    indices = range(len(golds))
    inputs = {i: _with_gold_entities(nlp, golds[i]) for i in indices}
    predicted: dict[int, Doc] = {}
    with nlp.select_pipes(disable=list(entity_components)):
        for index, result in process(nlp, indices, inputs.__getitem__, batch_size=batch_size):
            predicted[index] = nlp.make_doc(golds[index].text) if isinstance(result, DocError) else result
    scores = score_relations(((predicted[i], golds[i]) for i in indices), symmetric=symmetric)
    return {f"rel_gold_ents_{key[4:]}": value for key, value in scores.items() if not key.startswith("rel_strict_")}


def _throughput_runs(
    nlp: Language,
    golds: Sequence[Doc],
    *,
    use_gold_ents: bool,
    indices: range,
    batch_size: int,
    repeats: int,
    min_run_seconds: float,
    collect: Callable[[int, Doc | DocError[int]], None] | None = None,
) -> list[TimedRun]:
    """Time passes of ``nlp`` over the documents at ``indices`` (:func:`timed_runs`); ``collect`` gets the first pass."""

    def fresh_inputs() -> dict[int, Doc | str]:
        return {i: _with_gold_entities(nlp, golds[i]) if use_gold_ents else golds[i].text for i in indices}

    def one_pass(keep: bool, inputs: dict[int, Doc | str]) -> None:
        for index, result in process(nlp, indices, inputs.__getitem__, batch_size=batch_size):
            if keep and collect is not None:
                collect(index, result)  # the first pass is the one scored; the others only time

    return timed_runs(repeats, fresh_inputs, one_pass, min_run_seconds=min_run_seconds)


def _set_speed(report: EvalReport) -> None:
    """``report.speed``'s throughput figures from ``report.timing``: the median run."""
    timing = report.timing
    # A floor keeps the rates finite (JSON has no infinity) on a clock too coarse for a tiny run.
    seconds = max(statistics.median(timing["runs_seconds"]), 1e-9)
    report.speed["seconds"] = seconds
    report.speed["docs_per_second"] = timing["timed_docs"] / seconds
    report.speed["words_per_second"] = timing["timed_words"] / seconds


def add_timed_runs(nlp: Language, golds: Sequence[Doc], report: EvalReport, runs: int = 1) -> None:
    """Time ``runs`` more throughput runs of ``nlp`` exactly as :func:`evaluate` did, and update the report's speed.

    ``report`` must be what :func:`evaluate` returned for ``nlp`` on ``golds``.
    ``distil compare`` calls this to interleave the timed runs of its
    pipelines (run 2 of every pipeline, then run 3...), so that a change in the
    machine's load during the comparison hits every pipeline alike. Nothing
    happens for a metered pipeline (one pass only) or one that failed on every
    document.
    """
    timing = report.timing
    if timing.get("metered") or report.all_failed or runs < 1:
        return
    single = int(timing["latency_docs"])
    batched = single < len(golds)
    more = _throughput_runs(
        nlp,
        golds,
        use_gold_ents=report.gold_entities,
        indices=range(single, len(golds)) if batched else range(single),
        batch_size=int(timing["batch_size"]) if batched else 1,
        repeats=runs,
        min_run_seconds=float(timing["min_run_seconds"]),
    )
    timing["runs_seconds"] += [run.seconds for run in more]
    timing["passes_per_run"] += [run.passes for run in more]
    timing["repeats"] = len(timing["runs_seconds"])
    _set_speed(report)


_WHAT = {"ner": "entities", "textcat": "categories", "rel": "relations"}


def _gold_lacks(task: str, golds: Sequence[Doc], report: EvalReport) -> bool:
    """Whether no gold doc carries annotations for ``task`` (noted in the report: scoring it would mislead)."""
    if task == "ner":
        found = any(doc.ents for doc in golds)
    elif task == "textcat":
        found = any(doc.cats for doc in golds)
    else:
        found = any(doc._.relations for doc in golds)
    if not found:
        report.notes.append(f"the gold documents have no {_WHAT[task]}; {_WHAT[task]} are not scored")
    return not found


def evaluate(
    nlp: Language,
    gold_docs: Iterable[Doc],
    *,
    gold_entities: GoldEntities = "auto",
    rel_gold_entities: GoldEntities = "auto",
    semeval_official: bool = False,
    batch_size: int = 64,
    latency_docs: int = 0,
    response_cache: bool = True,
    repeats: int = DEFAULT_REPEATS,
    warmup_docs: int = DEFAULT_WARMUP_DOCS,
    min_run_seconds: float = DEFAULT_MIN_RUN_SECONDS,
) -> EvalReport:
    """Run ``nlp`` over the texts of ``gold_docs`` and score every task it performs.

    With ``gold_entities="auto"`` a pipeline that extracts relations but has no
    entity component gets the gold entities (copied by character offsets) on
    its input Docs, and entities are then not scored; ``True``/``False`` force
    it. When the pipeline finds its own entities and extracts relations,
    ``rel_gold_entities`` runs the relation part once more with the gold
    entities given (``rel_gold_ents_*`` scores, untimed); ``"auto"`` does it
    unless the pipeline is metered (an LLM: a second pass would double its
    cost). ``semeval_official`` adds the SemEval-2010 Task 8 measure (each gold doc
    holds exactly two entities, e1 and e2). With ``latency_docs`` = K, the
    first K documents go through the pipeline one at a time, each timed (the
    latency an application calling ``nlp(text)`` sees, ``p50_latency_ms`` and
    ``p95_latency_ms``), and throughput is measured on the batched rest, so a
    response cache warmed by the first pass cannot inflate it. With
    ``response_cache=False`` LLM components answer without their response
    cache, so answers an earlier run stored cannot make speed and cost look
    better than they are; otherwise cache hits are reported in a note.

    Speed: the first ``warmup_docs`` documents run once untimed (one-off costs
    such as lazy imports and first-call caches would otherwise land on
    whichever pipeline runs first), then the throughput pass is timed in
    ``repeats`` runs of at least ``min_run_seconds`` each
    (:func:`timed_runs`) and the median run counts; the first pass gives the
    predictions that are scored. A pipeline with a metered component
    (:func:`is_metered`, the LLM backends) gets one pass and no warm-up. When
    every document fails, ``speed`` is left empty and a note says why. Raises
    ``ValueError`` when ``gold_docs`` is empty or the pipeline performs no
    known task.
    """
    golds = list(gold_docs)
    if not golds:
        raise ValueError("the gold set is empty: nothing to evaluate")
    components = pipeline_tasks(nlp)
    if not components:
        raise ValueError(
            f"the pipeline ({', '.join(nlp.pipe_names) or 'no components'}) has no component that predicts "
            f"entities, categories or relations"
        )
    by_task: dict[str, list[str]] = {}
    for name, task in components.items():
        by_task.setdefault(task, []).append(name)
    use_gold_ents = ("rel" in by_task and "ner" not in by_task) if gold_entities == "auto" else bool(gold_entities)

    predictions: dict[int, Doc] = {}
    failed: list[FailedDoc] = []

    def collect(index: int, result: Doc | DocError[int]) -> None:
        if isinstance(result, DocError):
            meta = golds[index].user_data.get(META_KEY) or {}
            failed.append(FailedDoc(index, None if meta.get("id") is None else str(meta["id"]), result.reason))
            predictions[index] = nlp.make_doc(golds[index].text)
        else:
            predictions[index] = result

    def pipeline_inputs(indices: range) -> dict[int, Doc | str]:
        return {i: _with_gold_entities(nlp, golds[i]) if use_gold_ents else golds[i].text for i in indices}

    metered = is_metered(nlp)
    n_repeats = 1 if metered else max(repeats, 1)
    n_warmup = 0 if metered else min(max(warmup_docs, 0), len(golds))
    single = min(max(latency_docs, 0), len(golds))
    batched = single < len(golds)
    # The throughput part is the batched rest, or the one-at-a-time documents when there is no rest.
    timed_indices = range(single, len(golds)) if batched else range(single)

    latencies: list[float] = []
    hits_before = _cache_hits(collect_usage(nlp))  # usage counters accumulate over the pipeline's life
    with nullcontext() if response_cache else response_caches_off(nlp):
        if n_warmup:
            warm = pipeline_inputs(range(n_warmup))
            for _ in process(nlp, range(n_warmup), warm.__getitem__, batch_size=batch_size):
                pass
        if single:
            # One document per call, as an application calling nlp(text) sees it; the generator does each
            # document's work between two yields, so the gap between yields is that document's latency.
            singles = pipeline_inputs(range(single))
            start = time.perf_counter()
            for index, result in process(nlp, range(single), singles.__getitem__, batch_size=1):
                latencies.append(time.perf_counter() - start)
                collect(index, result)
                start = time.perf_counter()
        if batched or not metered:
            runs = _throughput_runs(
                nlp,
                golds,
                use_gold_ents=use_gold_ents,
                indices=timed_indices,
                batch_size=batch_size if batched else 1,
                repeats=n_repeats,
                min_run_seconds=0.0 if metered else min_run_seconds,
                collect=collect if batched else None,
            )
        else:
            # A metered pipeline whose documents all ran one at a time: that pass is its one timed run.
            runs = [TimedRun(sum(latencies), 1)]
    ordered_predictions = [predictions[i] for i in range(len(golds))]
    report = EvalReport(
        components=dict(components),
        gold_entities=use_gold_ents,
        n_docs=len(golds),
        n_words=sum(len(doc) for doc in ordered_predictions),
        failed_docs=failed,
        timing={
            "warmup_docs": n_warmup,
            "repeats": len(runs),
            "statistic": "median",
            "runs_seconds": [run.seconds for run in runs],
            "passes_per_run": [run.passes for run in runs],
            "min_run_seconds": 0.0 if metered else min_run_seconds,
            "latency_docs": single,
            "batch_size": batch_size,
            "timed_docs": len(timed_indices),
            "timed_words": sum(len(ordered_predictions[i]) for i in timed_indices),
            "metered": metered,
        },
    )
    _set_speed(report)
    if report.all_failed:
        report.speed = {}
        report.notes.append(
            f"every one of the {len(golds)} documents failed (doc {failed[0].index}: {failed[0].reason}); "
            f"no speed is reported and the scores only count misses"
        )
    elif latencies:
        report.speed["latency_docs"] = len(latencies)
        report.speed["p50_latency_ms"] = 1000 * percentile(latencies, 50)
        report.speed["p95_latency_ms"] = 1000 * percentile(latencies, 95)
    failures: Counter[str] = Counter(f.kind for doc in ordered_predictions for f in doc._.failures)
    report.failures = dict(sorted(failures.items()))
    report.usage = collect_usage(nlp)
    cache_hits = _cache_hits(report.usage) - hits_before
    if cache_hits:
        report.notes.append(
            f"{cache_hits} answer(s) came from the LLM response cache: speed and cost are not the model's "
            f"(measure them with the cache off: --no-cache, or response_cache=False from Python)"
        )
    pairs = list(zip(ordered_predictions, golds, strict=True))
    if use_gold_ents:
        report.notes.append("gold entities were given to the pipeline; entities are not scored")
    if "ner" in by_task and not use_gold_ents and not _gold_lacks("ner", golds, report):
        report.scores.update(score_entities(pairs))
    if "textcat" in by_task and not _gold_lacks("textcat", golds, report):
        labels, exclusive, threshold = _category_settings(nlp, by_task["textcat"], pairs)
        report.scores.update(score_categories(pairs, labels, exclusive=exclusive, threshold=threshold))
    if "rel" in by_task:
        # SemEval data may legitimately hold only "Other" answers, i.e. no relation at all.
        if semeval_official or not _gold_lacks("rel", golds, report):
            symmetric = _symmetric_labels(nlp, by_task["rel"])
            report.scores.update(score_relations(pairs, symmetric=symmetric))
            with_gold = (not metered) if rel_gold_entities == "auto" else bool(rel_gold_entities)
            if with_gold and not use_gold_ents and "ner" in by_task and not report.all_failed:
                report.scores.update(
                    _relations_with_gold_entities(nlp, golds, by_task["ner"], batch_size, symmetric)
                )
                report.notes.append(
                    "relations were also scored with the gold entities given (rel_gold_ents_*): "
                    "the gap to rel_micro_f is what entity errors cost"
                )
        if semeval_official:
            answers, skipped = semeval_answers(pairs)
            report.scores.update(score_semeval(answers))
            if skipped:
                report.notes.append(f"SemEval measure: {skipped} doc(s) without exactly two gold entities skipped")
    elif semeval_official:
        report.notes.append("SemEval measure requested but the pipeline has no relation component")
    report.scores.update(_calibration_scores(nlp, by_task, pairs, report.scores))
    return report


def _calibration_scores(
    nlp: Language, by_task: dict[str, list[str]], pairs: Sequence[tuple[Doc, Doc]], scores: dict[str, Any]
) -> dict[str, Any]:
    """The expected calibration error (:mod:`distil.scoring.calibration`) of each task scored above.

    For each task whose accuracy was measured: ``<prefix>_ece`` (``None``
    when the predictions carry no score) and ``<prefix>_calibration`` (the
    bins, the count of scored and unscored decisions).
    """
    out: dict[str, Any] = {}
    found: list[tuple[str, dict[str, Any]]] = []
    if "ents_f" in scores:
        found.append(("ents", entity_calibration(pairs)))
    if "cats_accuracy" in scores and "textcat" in by_task:
        labels, exclusive, threshold = _category_settings(nlp, by_task["textcat"], pairs)
        found.append(("cats", category_calibration(pairs, labels, exclusive=exclusive, threshold=threshold)))
    if "rel_micro_f" in scores and "rel" in by_task:
        found.append(("rel", relation_calibration(pairs, symmetric=_symmetric_labels(nlp, by_task["rel"]))))
    for prefix, calibration in found:
        out[f"{prefix}_ece"] = calibration["ece"]
        out[f"{prefix}_calibration"] = calibration
    return out


__all__ = [
    "DEFAULT_MIN_RUN_SECONDS",
    "DEFAULT_REPEATS",
    "DEFAULT_WARMUP_DOCS",
    "OTHER",
    "EvalReport",
    "FailedDoc",
    "TimedRun",
    "evaluate",
    "is_metered",
    "timed_runs",
]
