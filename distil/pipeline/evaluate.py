"""Evaluate a pipeline against gold documents: accuracy per task, speed, failures.

:func:`evaluate` runs the pipeline over the texts of gold Docs and scores each
task the pipeline performs (found with :func:`distil.pipeline.tasks.pipeline_tasks`):
entities with spaCy's NER scorer, categories with spaCy's category semantics,
relations by (head span, tail span, label) and optionally with the official
SemEval-2010 Task 8 measure. A document the pipeline fails on is counted (with
its reason) and scored as an empty prediction, so a crash costs recall instead
of vanishing from the denominator.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc

from ..annotations import EntityPrediction, write_entities
from ..records import META_KEY
from ..schemas import RELSchema, TextCatSchema
from .batch import DocError, process
from .parts import component_parts, response_caches_off
from .scoring import OTHER, directed_label, score_categories, score_entities, score_relations, score_semeval
from .tasks import pipeline_tasks
from .usage import collect_usage

GoldEntities = bool | Literal["auto"]


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
    ``seconds``, ``docs_per_second`` and ``words_per_second`` of the pipeline
    run alone; ``failures`` counts ``doc._.failures`` by kind; ``usage`` holds
    what components that track cost report (LLM requests, tokens) per component.
    """

    components: dict[str, str]
    gold_entities: bool
    n_docs: int
    n_words: int
    scores: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, float] = field(default_factory=dict)
    failed_docs: list[FailedDoc] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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
            out.update(spec.name for spec in schema.labels if spec.symmetric)
    return out


def _cache_hits(usage: dict[str, dict[str, Any]]) -> int:
    return sum(int(figures.get("cache_hits") or 0) for figures in usage.values())


def _with_gold_entities(nlp: Language, gold: Doc) -> Doc:
    doc = nlp.make_doc(gold.text)
    write_entities(doc, [EntityPrediction(e.start_char, e.end_char, e.label_) for e in gold.ents], overlap="longest")
    return doc


def _semeval_answers(pairs: Iterable[tuple[Doc, Doc]]) -> tuple[list[tuple[str, str]], int]:
    """(gold, predicted) SemEval answers for docs with two gold entities; also the count of docs skipped."""
    answers: list[tuple[str, str]] = []
    skipped = 0
    for predicted, gold in pairs:
        ents = sorted(gold.ents, key=lambda e: e.start_char)
        if len(ents) != 2:
            skipped += 1
            continue
        e1 = (ents[0].start_char, ents[0].end_char)
        e2 = (ents[1].start_char, ents[1].end_char)
        answers.append((directed_label(gold, e1, e2), directed_label(predicted, e1, e2)))
    return answers, skipped


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
    semeval_official: bool = False,
    batch_size: int = 64,
    latency_docs: int = 0,
    response_cache: bool = True,
) -> EvalReport:
    """Run ``nlp`` over the texts of ``gold_docs`` and score every task it performs.

    With ``gold_entities="auto"`` a pipeline that extracts relations but has no
    entity component gets the gold entities (copied by character offsets) on
    its input Docs, and entities are then not scored; ``True``/``False`` force
    it. ``semeval_official`` adds the SemEval-2010 Task 8 measure (each gold doc
    holds exactly two entities, e1 and e2). With ``latency_docs`` = K, the
    first K documents go through the pipeline one at a time, each timed (the
    latency an application calling ``nlp(text)`` sees, ``p50_latency_ms`` and
    ``p95_latency_ms``), and throughput is measured on the batched rest, so a
    response cache warmed by the first pass cannot inflate it. With
    ``response_cache=False`` LLM components answer without their response
    cache, so answers an earlier run stored cannot make speed and cost look
    better than they are; otherwise cache hits are reported in a note. Raises
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

    inputs: list[Doc | str] = [_with_gold_entities(nlp, g) if use_gold_ents else g.text for g in golds]
    predictions: list[Doc] = []
    failed: list[FailedDoc] = []

    def collect(index: int, result: Doc | DocError[int]) -> None:
        if isinstance(result, DocError):
            meta = golds[index].user_data.get(META_KEY) or {}
            failed.append(FailedDoc(index, None if meta.get("id") is None else str(meta["id"]), result.reason))
            predictions.append(nlp.make_doc(golds[index].text))
        else:
            predictions.append(result)

    single = min(max(latency_docs, 0), len(golds))
    latencies: list[float] = []
    hits_before = _cache_hits(collect_usage(nlp))  # usage counters accumulate over the pipeline's life
    with nullcontext() if response_cache else response_caches_off(nlp):
        for index in range(single):
            start = time.perf_counter()
            for _, result in process(nlp, [index], lambda i: inputs[i], batch_size=1):
                collect(index, result)
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        for index, result in process(nlp, range(single, len(golds)), lambda i: inputs[i], batch_size=batch_size):
            collect(index, result)
        seconds = time.perf_counter() - start
    timed = predictions[single:]
    if not timed:
        # Everything ran one at a time: the throughput is that of the single-document pass.
        timed, seconds = predictions, sum(latencies)
    # A floor keeps the rates finite (JSON has no infinity) on a clock too coarse for a tiny run.
    seconds = max(seconds, 1e-9)

    n_timed_words = sum(len(doc) for doc in timed)
    report = EvalReport(
        components=dict(components),
        gold_entities=use_gold_ents,
        n_docs=len(golds),
        n_words=sum(len(doc) for doc in predictions),
        failed_docs=failed,
        speed={
            "seconds": seconds,
            "docs_per_second": len(timed) / seconds,
            "words_per_second": n_timed_words / seconds,
        },
    )
    if latencies:
        ordered = sorted(latencies)
        report.speed["latency_docs"] = len(ordered)
        report.speed["p50_latency_ms"] = 1000 * ordered[(len(ordered) - 1) // 2]
        report.speed["p95_latency_ms"] = 1000 * ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    failures: Counter[str] = Counter(f.kind for doc in predictions for f in doc._.failures)
    report.failures = dict(sorted(failures.items()))
    report.usage = collect_usage(nlp)
    cache_hits = _cache_hits(report.usage) - hits_before
    if cache_hits:
        report.notes.append(
            f"{cache_hits} answer(s) came from the LLM response cache: speed and cost are not the model's "
            f"(measure them with the cache off: --no-cache, or response_cache=False from Python)"
        )
    pairs = list(zip(predictions, golds, strict=True))
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
            report.scores.update(score_relations(pairs, symmetric=_symmetric_labels(nlp, by_task["rel"])))
        if semeval_official:
            answers, skipped = _semeval_answers(pairs)
            report.scores.update(score_semeval(answers))
            if skipped:
                report.notes.append(f"SemEval measure: {skipped} doc(s) without exactly two gold entities skipped")
    elif semeval_official:
        report.notes.append("SemEval measure requested but the pipeline has no relation component")
    return report


__all__ = ["OTHER", "EvalReport", "FailedDoc", "evaluate"]
