"""The human-in-the-loop round trip: export annotations for a person to correct, import the corrections.

``export_review`` writes the model's annotations as Prodigy-style JSONL or Label
Studio JSON in a review order (:func:`review_order`: the teacher's doubt first,
by its confidence or by its disagreement with a second opinion, or at random;
ties are broken by a seeded shuffle, never by file order); ``import_review`` merges the
corrected tasks back into the annotation records: a reviewed document replaces
the model's (``meta.reviewed = true``), a rejected one is dropped, an ignored or
untouched one stays as the model made it. The merge reports counts and the
agreement between model and reviewer per label (the reviewer taken as gold).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import registry

from ..confidence import document_confidence, is_multi_label
from ..corpus import RECORDS, CorpusError, read_annotation_records
from ..errors import DistilError
from ..records import EMPTY_SCORES_META, DocRecord, dumps, from_record, to_record
from ..schemas import NERSchema, RELSchema, TextCatSchema
from ..scoring.categories import score_categories
from ..scoring.entities import score_entities
from ..scoring.relations import score_relations
from ..textfile import InputError, check_json_lines, empty_message, json_array_message, numbered_lines, read_text
from .annotate import text_key
from .config import read_config
from .io.labelstudio import chosen_categories, labeling_config, labelstudio_to_doc, latest_annotation, to_labelstudio
from .io.prodigy import task_to_doc, to_prodigy
from .store import AnnotationStore
from .tasks import pipeline_tasks

ReviewFormat = Literal["prodigy", "labelstudio"]
Order = Literal["uncertainty", "disagreement", "random", "input"]
ORDERS: tuple[str, ...] = ("uncertainty", "disagreement", "random", "input")
# Meta keys that describe the teacher's answer, not the document: a reviewed record drops them.
TEACHER_META = ("failures", "confidence", EMPTY_SCORES_META)
REJECT = "reject"


class ReviewError(DistilError, ValueError):
    """A review file or annotation set could not be used; the message names the file and problem."""


def records_path(annotations: Path) -> Path:
    """``records.jsonl`` of an annotation directory, or the records file itself."""
    return annotations / RECORDS if annotations.is_dir() else annotations


def load_records(annotations: Path) -> list[DocRecord]:
    """The records of an annotation directory (``distil annotate`` output) or a records JSONL file."""
    path = records_path(annotations)
    if not path.exists():
        raise ReviewError(f"no annotations at {path}: give a `distil annotate` output directory or a records .jsonl")
    if annotations.is_dir():
        try:
            return list(read_annotation_records(annotations))
        except CorpusError as err:
            raise ReviewError(str(err)) from None
    records = []
    with path.open("rb") as handle:
        for number, raw in numbered_lines(handle):
            if not raw.strip():
                continue
            if number == 1 and raw.lstrip().startswith(b"["):
                raise ReviewError(json_array_message(str(path)))
            try:
                records.append(DocRecord.model_validate_json(raw))
            except ValueError as err:
                raise ReviewError(f"{path}:{number}: not a record ({str(err).splitlines()[0]})") from err
    return records


def _nonempty_records(annotations: Path) -> list[DocRecord]:
    records = load_records(annotations)
    if not records:
        raise ReviewError(f"{records_path(annotations)}: input is empty (no records to review)")
    return records


@dataclass(frozen=True)
class ReviewSchema:
    """The labels a reviewer may use, per task, as the pipeline config's ``[schemas]`` block declares them.

    ``None`` for entities means any entity label (a relation-only pipeline
    whose entity types the schema leaves open); an empty tuple means the
    config declares no such task, so no label of it is accepted.
    """

    source: str
    entities: Optional[tuple[str, ...]] = None
    relations: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclusive: bool = True

    @classmethod
    def from_schemas(cls, schemas: Iterable[Any], source: str) -> ReviewSchema:
        """The review schema of resolved task schemas (NER, relations, categories)."""
        entities: Optional[tuple[str, ...]] = None
        relations: tuple[str, ...] = ()
        categories: tuple[str, ...] = ()
        exclusive = True
        rel_entities: tuple[str, ...] = ()
        has_rel = False
        for schema in schemas:
            if isinstance(schema, NERSchema):
                entities = schema.label_names
            elif isinstance(schema, RELSchema):
                has_rel = True
                relations = schema.label_names
                rel_entities = schema.entity_labels
            elif isinstance(schema, TextCatSchema):
                categories = schema.label_names
                exclusive = schema.exclusive
        if entities is None and not has_rel:
            entities = ()  # no task produces entities: a reviewer adding one has made a mistake
        elif entities is None and rel_entities:
            entities = rel_entities
        return cls(source, entities, relations, categories, exclusive)

    def problems(self, doc: Doc) -> list[str]:
        """Every label of ``doc`` outside the schema, each naming the labels that are allowed."""
        out = []
        checks: list[tuple[str, Iterable[str], Optional[tuple[str, ...]]]] = [
            ("entity", (ent.label_ for ent in doc.ents), self.entities),
            ("relation", (rel.label for rel in doc._.relations), self.relations),
            ("category", doc.cats, self.categories),
        ]
        for what, labels, allowed in checks:
            if allowed is None:
                continue
            for label in dict.fromkeys(labels):
                if label not in allowed:
                    known = ", ".join(allowed) if allowed else f"none: the config declares no {what} labels"
                    out.append(f"{what} label {label!r} is not in the schema of {self.source} (known: {known})")
        return out


def load_review_schema(config: Path) -> ReviewSchema:
    """The labels of a pipeline config (``.cfg`` or a saved pipeline directory), read from its ``[schemas]`` block.

    Only the schemas are built, not the components, so this is quick even for
    an LLM or encoder pipeline whose model is not at hand.
    """
    path = config / "config.cfg" if config.is_dir() else config
    cfg = read_config(path)
    if not isinstance(cfg.get("schemas"), Mapping) or not cfg["schemas"]:
        raise ReviewError(f"{path}: no [schemas] block; give the config of the pipeline whose annotations are reviewed")
    try:
        resolved = registry.resolve({"schemas": cfg.interpolate()["schemas"]}, validate=True)["schemas"]
    except Exception as err:  # confection raises many kinds for a bad block; all mean the same to the user
        raise ReviewError(f"{path}: cannot build the [schemas] block ({str(err).splitlines()[0]})") from err
    return ReviewSchema.from_schemas(resolved.values(), str(path))


def key_of(record: DocRecord) -> str:
    """The identity of a record across the round trip: ``meta.key`` or the hash of its text."""
    key = record.meta.get("key")
    return str(key) if key else text_key(record.text)


def confidence(record: DocRecord) -> float:
    """The confidence a review orders by: :func:`distil.confidence.document_confidence`, 0.0 when there is none.

    A document without any score counts as the least confident (with a
    failure, 0.0): a teacher that said nothing about its certainty has not
    said it is sure, and a document it was not sure of is what a review is for.
    When no document has a score, every one ties and the seeded shuffle alone
    decides the order (a random review).
    """
    value = document_confidence(record)
    return 0.0 if value is None else value


def tie_breaks(count: int, seed: int) -> list[int]:
    """A seeded random rank for each of ``count`` documents: what breaks ties in every review order.

    Breaking ties by file order would review a sorted corpus's first labels
    first (BANKING77's training file is grouped by intent); the same seed
    always gives the same ranks.
    """
    ranks = [0] * count
    for rank, index in enumerate(random.Random(seed).sample(range(count), count)):
        ranks[index] = rank
    return ranks


def _item_sets(doc: Doc, tasks: Iterable[str]) -> set[tuple[Any, ...]]:
    """The decisions of ``doc`` for ``tasks`` as one set: entities, relations (by entity offsets) and chosen categories."""
    items: set[tuple[Any, ...]] = set()
    tasks = set(tasks)
    if "ner" in tasks:
        items.update(("ent", e.start_char, e.end_char, e.label_) for e in doc.ents)
    if "rel" in tasks:
        items.update(
            ("rel", r.head.start_char, r.head.end_char, r.tail.start_char, r.tail.end_char, r.label)
            for r in doc._.relations
        )
    if "textcat" in tasks:
        items.update(("cat", label) for label in chosen_categories(dict(doc.cats), is_multi_label(doc.cats)))
    return items


def disagreement(teacher: Doc, other: Doc, tasks: Iterable[str]) -> float:
    """1 - the agreement (Jaccard index) of the two Docs' entity, relation and category sets for ``tasks``.

    0.0 when both made the same decisions (two empty answers agree), 1.0
    when they share none. Only the tasks the second opinion performs are
    compared, so a rules NER pipeline says nothing about the teacher's categories.
    """
    tasks = list(tasks)
    mine, theirs = _item_sets(teacher, tasks), _item_sets(other, tasks)
    union = mine | theirs
    return 1.0 - (len(mine & theirs) / len(union) if union else 1.0)


def second_opinion_disagreements(records: Sequence[DocRecord], second: Language, nlp: Language) -> list[float]:
    """How much ``second`` (another pipeline over the same texts) disagrees with each record (:func:`disagreement`).

    A second opinion that predicts relations but no entities (a rules or
    student relation pipeline) is given each record's entities, as
    ``distil evaluate`` gives gold entities, and entities are then not compared.
    """
    performed = set(pipeline_tasks(second).values())
    if not performed:
        raise ReviewError(
            f"the second-opinion pipeline ({', '.join(second.pipe_names) or 'no components'}) predicts no "
            "entities, categories or relations to compare with"
        )
    give_entities = "rel" in performed and "ner" not in performed
    compared = performed - {"ner"} if give_entities else performed
    inputs: list[Doc | str] = []
    for record in records:
        if give_entities:
            entities_only = DocRecord(text=record.text, entities=record.entities)
            inputs.append(from_record(entities_only, second))
        else:
            inputs.append(record.text)
    out = []
    for record, other in zip(records, second.pipe(inputs), strict=True):
        out.append(disagreement(from_record(record, nlp), other, compared))
    return out


def review_order(
    records: Sequence[DocRecord],
    order: Order,
    *,
    seed: int = 0,
    disagreements: Optional[Sequence[float]] = None,
) -> list[int]:
    """The indices of ``records`` in review order: the documents a person should see first come first.

    ``uncertainty``: lowest :func:`confidence` first; ``disagreement``:
    highest disagreement with a second opinion first (``disagreements``, one
    per record, from :func:`second_opinion_disagreements`); ``random``: a
    seeded shuffle; ``input``: file order. Ties are broken by the seeded
    shuffle (:func:`tie_breaks`), never by file order.
    """
    if order not in ORDERS:
        raise ReviewError(f"unknown review order {order!r}; use {', '.join(ORDERS)}")
    indices = list(range(len(records)))
    if order == "input":
        return indices
    ranks = tie_breaks(len(records), seed)
    if order == "random":
        return sorted(indices, key=lambda i: ranks[i])
    if order == "uncertainty":
        values = [confidence(r) for r in records]
        return sorted(indices, key=lambda i: (values[i], ranks[i]))
    if disagreements is None or len(disagreements) != len(records):
        raise ReviewError("--order disagreement needs a second opinion (--second-opinion CONFIG) over the same documents")
    return sorted(indices, key=lambda i: (-disagreements[i], ranks[i]))


def export_review(
    annotations: Path,
    output: Path,
    nlp: Language,
    *,
    fmt: ReviewFormat = "prodigy",
    order: Order = "uncertainty",
    limit: Optional[int] = None,
    schema: Optional[ReviewSchema] = None,
    seed: int = 0,
    second_opinion: Optional[Language] = None,
) -> int:
    """Write review tasks for the records in ``annotations`` in :func:`review_order`; returns how many were written.

    ``order="disagreement"`` runs the ``second_opinion`` pipeline over the
    same texts; ``seed`` breaks ties (and is the ``random`` order). With a
    ``schema``, Label Studio's labeling config offers every label the schema
    declares (not only those the model happened to use), so a reviewer can
    add a missing entity type, relation or category.
    """
    records = _nonempty_records(annotations)
    disagreements: Optional[list[float]] = None
    if second_opinion is not None:
        disagreements = second_opinion_disagreements(records, second_opinion, nlp)
    ordered = review_order(records, order, seed=seed, disagreements=disagreements)
    if limit is not None:
        ordered = ordered[:limit]
    records = [records[i] for i in ordered]
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "prodigy":
        with output.open("w", encoding="utf-8") as out:
            for index, record in zip(ordered, records, strict=True):
                task = to_prodigy(from_record(record, nlp))
                task.setdefault("meta", {})["key"] = key_of(record)
                task["meta"]["confidence"] = round(confidence(record), 4)
                if disagreements is not None:
                    task["meta"]["disagreement"] = round(disagreements[index], 4)
                out.write(json.dumps(task, ensure_ascii=False) + "\n")
        return len(records)
    if schema is not None and schema.categories:
        multi = not schema.exclusive
    else:
        multi = any(is_multi_label(r.cats) for r in records)
    tasks = [
        to_labelstudio(from_record(r, nlp), key_of(r), multi_label=multi, score=confidence(r)) for r in records
    ]
    output.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    # The schema's labels first, in its order; then any the records use beyond it, so that Label Studio
    # shows them (and the reviewer fixes them: import refuses labels outside the schema).
    ents = list(dict.fromkeys([*((schema.entities or ()) if schema else ()),
                               *sorted({e.label for r in records for e in r.entities})]))
    rels = list(dict.fromkeys([*(schema.relations if schema else ()),
                               *sorted({x.label for r in records for x in r.relations})]))
    cats = list(dict.fromkeys([*(schema.categories if schema else ()),
                               *(label for r in records for label in r.cats)]))
    output.with_suffix(".xml").write_text(labeling_config(ents, rels, cats, multi), encoding="utf-8")
    return len(tasks)


@dataclass
class ImportReport:
    """What a merge did, and how often the reviewer agreed with the model, per label."""

    reviewed: int = 0
    changed: int = 0
    rejected: int = 0
    ignored: int = 0
    unanswered: int = 0
    not_found: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    agreement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "reviewed": self.reviewed,
            "changed": self.changed,
            "rejected": self.rejected,
            "ignored": self.ignored,
            "unanswered": self.unanswered,
            "not_found": self.not_found,
            "invalid": dict(self.invalid),
            "agreement": self.agreement,
        }


def _read_review(
    path: Path, nlp: Language, report: ImportReport, schema: Optional[ReviewSchema]
) -> dict[str, Optional[Doc]]:
    """Map record key -> reviewed Doc (``None`` for a rejected document).

    Only answered tasks count: a Prodigy task without ``answer`` or a Label
    Studio task without annotations is ``unanswered`` and keeps the model's
    annotations. A task that cannot be used (malformed, a label outside the
    ``schema``) is counted in ``report.invalid`` under its ``file:line`` (Label
    Studio: ``file: task N``) and not merged.
    """
    if not path.exists():
        raise ReviewError(f"review file not found: {path}")
    try:
        if path.suffix == ".json":
            return _read_labelstudio(path, nlp, report, schema)
        check_json_lines(path)
    except InputError as err:
        raise ReviewError(str(err)) from None
    out: dict[str, Optional[Doc]] = {}
    with path.open("rb") as handle:
        for number, raw in numbered_lines(handle):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                task = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as err:
                report.invalid[f"{where}: malformed JSON ({err})"] += 1
                continue
            if not isinstance(task, dict):
                report.invalid[f"{where}: not a JSON object (one Prodigy task a line)"] += 1
                continue
            given_meta = task.get("meta")
            meta: dict[str, Any] = given_meta if isinstance(given_meta, dict) else {}
            key = str(meta.get("key") or text_key(str(task.get("text", ""))))
            answer = task.get("answer")
            if answer is None:
                report.unanswered += 1
            elif answer == REJECT:
                out[key] = None
            elif answer == "ignore":
                report.ignored += 1
            elif answer == "accept":
                meta.pop("confidence", None)
                try:
                    doc = task_to_doc(task, nlp)
                except (ValueError, KeyError, TypeError, IndexError) as err:
                    report.invalid[f"{where}: {err}"] += 1
                    continue
                _accept(out, key, doc, where, report, schema)
            else:
                report.invalid[f"{where}: unknown answer {answer!r} (use accept, reject or ignore)"] += 1
    return out


def _read_labelstudio(
    path: Path, nlp: Language, report: ImportReport, schema: Optional[ReviewSchema]
) -> dict[str, Optional[Doc]]:
    """The reviewed Docs of a Label Studio JSON export (see :func:`_read_review`)."""
    try:
        tasks = json.loads(read_text(path))
    except UnicodeDecodeError as err:
        raise ReviewError(f"{path}: invalid UTF-8 at byte {err.start}") from err
    except ValueError as err:
        if not path.read_bytes().strip():
            raise ReviewError(empty_message(str(path))) from None
        raise ReviewError(
            f"{path}: not Label Studio JSON ({err}); a Prodigy file (one task a line) must end in .jsonl"
        ) from err
    if not isinstance(tasks, list):
        raise ReviewError(f"{path}: Label Studio export must be a JSON list of tasks")
    if not tasks:
        raise ReviewError(f"{path}: input is empty (no tasks)")
    out: dict[str, Optional[Doc]] = {}
    for number, task in enumerate(tasks, start=1):
        where = f"{path}: task {number}"
        if not isinstance(task, dict):
            report.invalid[f"{where}: not a JSON object"] += 1
            continue
        given_data = task.get("data")
        data: dict[str, Any] = given_data if isinstance(given_data, dict) else {}
        key = str(data.get("key") or text_key(str(data.get("text", ""))))
        annotation = latest_annotation(task)
        if annotation is None:
            if task.get("annotations"):
                report.ignored += 1  # every annotation was cancelled: the person skipped it
            else:
                report.unanswered += 1
            continue
        result = annotation.get("result") or []
        if any(r.get("from_name") == "review" and REJECT in (r.get("value") or {}).get("choices", []) for r in result):
            out[key] = None
            continue
        try:
            doc = labelstudio_to_doc(task, result, nlp)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            report.invalid[f"{where}: {err}"] += 1
            continue
        _accept(out, key, doc, where, report, schema)
    return out


def _accept(
    out: dict[str, Optional[Doc]], key: str, doc: Doc, where: str, report: ImportReport, schema: Optional[ReviewSchema]
) -> None:
    """Keep a reviewed Doc, unless it uses a label outside the schema (then it is invalid, with its place)."""
    problems = schema.problems(doc) if schema is not None else []
    if problems:
        for problem in problems:
            report.invalid[f"{where}: {problem}"] += 1
        return
    out[key] = doc


def import_review(
    review_file: Path, annotations: Path, nlp: Language, *, schema: Optional[ReviewSchema] = None
) -> ImportReport:
    """Merge corrected tasks into ``annotations`` (rewritten atomically) and report agreement.

    Tasks the reviewer answered replace the model's records; unanswered ones
    change nothing. With a ``schema``, a task using a label outside it is
    reported invalid (with its file and line) and not merged; the valid ones
    are, so fixing the file and importing it again finishes the job.
    """
    records = _nonempty_records(annotations)
    report = ImportReport()
    reviewed = _read_review(review_file, nlp, report, schema)
    index = {key_of(r): i for i, r in enumerate(records)}
    pairs: list[tuple[Doc, Doc]] = []
    keep = [True] * len(records)
    for key, doc in reviewed.items():
        i = index.get(key)
        if i is None:
            report.not_found += 1
            continue
        if doc is None:
            keep[i] = False
            report.rejected += 1
            continue
        model = records[i]
        pairs.append((from_record(model, nlp), doc))
        new = to_record(doc)
        # The teacher's failures and confidences described its answer, which the reviewer's replaces.
        meta = {k: v for k, v in model.meta.items() if k not in TEACHER_META}
        meta.update({k: v for k, v in new.meta.items() if k not in (*TEACHER_META, "disagreement")})
        meta["reviewed"] = True
        new.meta = meta
        if (new.entities, new.relations, new.cats) != (model.entities, model.relations, model.cats):
            report.changed += 1
        records[i] = new
        report.reviewed += 1
    report.agreement = agreement(pairs)
    _write_records(annotations, [r for r, k in zip(records, keep, strict=True) if k])
    return report


def agreement(pairs: list[tuple[Doc, Doc]]) -> dict[str, Any]:
    """Model-vs-reviewer F1 per label and overall, for each task present (the reviewer as gold)."""
    if not pairs:
        return {}
    out: dict[str, Any] = {}
    if any(doc.ents for pair in pairs for doc in pair):
        ents = score_entities(pairs)
        out["entities"] = {"f": ents["ents_f"], "per_label": {k: v["f"] for k, v in ents["ents_per_type"].items()}}
    if any(doc._.relations for pair in pairs for doc in pair):
        rels = score_relations(pairs)
        out["relations"] = {"f": rels["rel_micro_f"], "per_label": {k: v["f"] for k, v in rels["rel_per_type"].items()}}
    labels = list(dict.fromkeys(label for pair in pairs for doc in pair for label in doc.cats))
    if labels:
        multi = any(is_multi_label(model.cats) for model, _ in pairs)
        cats = score_categories(pairs, labels, exclusive=not multi)
        # Only labels the model or the reviewer chose: the other labels of a 77-intent schema
        # would each print an F of 0.0 that says nothing about agreement.
        chosen = {label for pair in pairs for doc in pair for label in chosen_categories(doc.cats, multi)}
        out["categories"] = {
            "accuracy": cats.get("cats_accuracy"),
            "per_label": {
                k: v["f"] for k, v in cats["cats_f_per_type"].items() if v["f"] is not None and k in chosen
            },
        }
    return out



def _write_records(annotations: Path, records: list[DocRecord]) -> None:
    """Replace the records of an annotation directory (under its lock) or of a records file, atomically."""
    if annotations.is_dir():
        with AnnotationStore.open(annotations, command="distil review") as store:
            store.rewrite(records)
        return
    tmp = annotations.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(dumps(r) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, annotations)


def simulate_review(
    annotations: Path,
    gold: list[Doc],
    fraction: float,
    output: Path,
    nlp: Language,
    *,
    order: Order = "uncertainty",
    seed: int = 0,
    second_opinion: Optional[Language] = None,
) -> dict[str, Any]:
    """A *simulation* of a person's corrections, for experiments: gold replaces the teacher on a fraction.

    The first ``fraction`` of documents in :func:`review_order` (those a
    person would review first under the same ``order``, ``seed`` and
    ``second_opinion`` with ``review export``) get the gold annotations
    instead of the teacher's, marked ``meta.reviewed = true`` and
    ``meta.review = "simulated-gold"`` so that no one mistakes them for human
    work. Writes a new annotation directory; returns counts.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ReviewError(f"--fraction must be between 0 and 1, got {fraction}")
    records = _nonempty_records(annotations)
    if not gold:
        raise ReviewError("the gold corpus is empty: input is empty")
    by_text = {doc.text: doc for doc in gold}
    matched = sum(record.text in by_text for record in records)
    if not matched:
        # Every replacement would silently be skipped: a gold file for other texts (another split?).
        raise ReviewError(
            f"no texts matched: none of the {len(records)} annotated texts in {records_path(annotations)} is "
            f"among the {len(by_text)} gold texts; give the gold corpus of the texts that were annotated"
        )
    wanted = round(fraction * len(records))
    replaced = 0
    disagreements = second_opinion_disagreements(records, second_opinion, nlp) if second_opinion is not None else None
    for i in review_order(records, order, seed=seed, disagreements=disagreements):
        if replaced >= wanted:
            break
        gold_doc = by_text.get(records[i].text)
        if gold_doc is None:
            continue
        new = to_record(gold_doc)
        new.meta = {**{k: v for k, v in records[i].meta.items() if k not in TEACHER_META}, "reviewed": True,
                    "review": "simulated-gold"}
        records[i] = new
        replaced += 1
    output.mkdir(parents=True, exist_ok=True)
    _write_records(output, records)
    summary = {"documents": len(records), "fraction": fraction, "replaced_by_gold": replaced, "order": order, "seed": seed,
               "note": "simulated review: gold annotations stand in for a person's corrections"}
    (output / "review.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
