"""One review of an annotation directory: its documents in review order, the decisions, the agreement.

:meth:`ReviewSession.open` takes the annotation store's lock (so ``distil
annotate`` or ``review import`` cannot write the directory while a person
reviews it) and computes the review order the way ``review export`` and
``review simulate`` do (:func:`distil.pipeline.review.review_order` over the
teacher's records, with the same ``--order``, ``--seed`` and second opinion),
so a restart shows the same order and resumes at the first document the
reviewer has not decided.

A decision is written twice before it is answered: the reviewed record is
appended to the store (``meta.reviewed = true``, ``meta.review`` =
``accepted``, ``corrected`` or ``rejected``, ``meta.reviewer``; the
teacher-only meta dropped as ``review import`` drops it), then its row is
committed to ``review.sqlite`` (:mod:`distil.review_app.decisions`). The store
goes first: a process killed between the two has the record where ``distil
train`` reads it, and shows the document again as not yet decided, rather
than the reverse (a decision the page shows as saved that training never sees).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Optional

from spacy.language import Language
from spacy.tokens import Doc

from ..corpus import RECORDS
from ..errors import DistilError
from ..pipeline.review import (
    TEACHER_META,
    Order,
    ReviewSchema,
    agreement,
    confidence,
    key_of,
    review_order,
    second_opinion_disagreements,
)
from ..pipeline.store import AnnotationStore
from ..records import DocRecord, from_record, to_record
from .decisions import DATABASE, REVIEW_META, Decision, DecisionLog, DecisionRow
from .edits import Edit, EditError, apply_edit, check_record, same_answer

# Meta keys a previous review wrote; a new decision writes its own.
REVIEW_KEYS = ("reviewed", "review", "reviewer", "disagreement")


class ReviewAppError(DistilError, ValueError):
    """The review server cannot start or serve as asked; the message names the problem and the fix."""


class UnknownDocument(ReviewAppError):
    """A key or position that is not one of the documents under review."""


@dataclass(frozen=True)
class Progress:
    """How far one reviewer got: documents decided, by decision, out of all."""

    total: int
    decided: int
    accepted: int
    corrected: int
    rejected: int


@dataclass(frozen=True)
class DocumentState:
    """One document as a reviewer sees it: the teacher's answer, theirs (if they decided), its place in the order."""

    position: int  # 0-based place in the review order
    key: str
    teacher: DocRecord  # the teacher's answer placed on the tokens (what "accept" keeps)
    record: DocRecord  # what the page shows: the reviewer's answer if decided, else the teacher's
    decision: Optional[DecisionRow]
    confidence: float
    disagreement: Optional[float]
    failures: tuple[str, ...]
    note: Optional[str]


class ReviewSession:
    """The documents of one annotation directory under review, and every reviewer's decisions on them."""

    def __init__(
        self, directory: Path, store: AnnotationStore, log: DecisionLog, schema: ReviewSchema, nlp: Language,
        teacher: dict[str, DocRecord], keys: list[str], *, order: Order, seed: int,
        disagreements: Optional[dict[str, float]] = None,
    ) -> None:
        self.directory = directory
        self.store = store
        self.log = log
        self.schema = schema
        self.nlp = nlp
        self.order = order
        self.seed = seed
        self.teacher = teacher
        self.keys = keys
        self.index = {key: i for i, key in enumerate(keys)}
        self.disagreements = disagreements
        self._lock = threading.Lock()
        self._views: dict[str, tuple[DocRecord, Optional[str]]] = {}
        self._docs: dict[tuple[str, int], Doc] = {}
        self._latest: dict[tuple[str, str], DecisionRow] = log.latest()
        # Without categories in the schema, exclusive is moot; True keeps the one-category reading of cats.
        self.exclusive = schema.exclusive if schema.categories else True
        seen = sorted({e.label for r in teacher.values() for e in r.entities})
        self.entity_labels: tuple[str, ...] = schema.entities if schema.entities is not None else tuple(seen)
        self.category_labels: tuple[str, ...] = schema.categories

    @classmethod
    def open(
        cls, directory: Path, schema: ReviewSchema, nlp: Language, *, order: Order = "uncertainty", seed: int = 0,
        second_opinion: Optional[Language] = None,
    ) -> ReviewSession:
        """Lock ``directory``, read its records and decisions, and put the documents in review order."""
        directory = Path(directory)
        if not (directory / RECORDS).is_file():
            raise ReviewAppError(
                f"no annotations at {directory / RECORDS}: give a `distil annotate` output directory"
            )
        if order == "disagreement" and second_opinion is None:
            raise ReviewAppError("--order disagreement needs --second-opinion CONFIG: the pipeline the teacher is "
                                 "compared with")
        store = AnnotationStore.open(directory, command="distil review serve")
        log: Optional[DecisionLog] = None
        try:
            records = list(store.records())
            if not records:
                raise ReviewAppError(f"{directory / RECORDS}: input is empty (no records to review); run "
                                     "`distil annotate` first")
            log = DecisionLog(directory / DATABASE)
            teacher = _teacher_records(records, log)
            store_keys = [key_of(r) for r in records]
            in_store_order = [teacher[key] for key in store_keys]
            disagreements: Optional[list[float]] = None
            if second_opinion is not None:
                disagreements = second_opinion_disagreements(in_store_order, second_opinion, nlp)
            ordered = review_order(in_store_order, order, seed=seed, disagreements=disagreements)
            keys = [store_keys[i] for i in ordered]
            by_key = dict(zip(store_keys, disagreements, strict=True)) if disagreements is not None else None
            return cls(directory, store, log, schema, nlp, teacher, keys, order=order, seed=seed,
                       disagreements=by_key)
        except BaseException:
            if log is not None:
                log.close()
            store.close()
            raise

    def close(self) -> None:
        """Release the store's lock and close the database (every decision is already on disk)."""
        self.log.close()
        self.store.close()

    @property
    def total(self) -> int:
        """How many documents are under review."""
        return len(self.keys)

    # -- documents ------------------------------------------------------------------------------------------

    def teacher_view(self, key: str) -> tuple[DocRecord, Optional[str]]:
        """The teacher's record of ``key`` placed on the tokens, and a note if its entities could not be placed."""
        cached = self._views.get(key)
        if cached is not None:
            return cached
        raw = self.teacher[key]
        note: Optional[str] = None
        try:
            view = to_record(from_record(raw, self.nlp))
        except ValueError as err:
            note = (f"the teacher's entities could not be placed on the tokens ({err}); they are not shown: "
                    "add them again or reject the document")
            view = raw.model_copy(update={"entities": [], "relations": []})
        view = view.model_copy(update={"meta": {}})
        self._views[key] = (view, note)
        return view, note

    def document(self, position: int, reviewer: str) -> DocumentState:
        """The document at ``position`` (0-based) of the order, as ``reviewer`` sees it."""
        if not 0 <= position < self.total:
            raise UnknownDocument(f"there is no document {position + 1}; the review has {self.total}")
        key = self.keys[position]
        teacher, note = self.teacher_view(key)
        decision = self._latest.get((reviewer, key))
        record = teacher
        if decision is not None and decision.decision != "reject":
            record = decision.record.model_copy(update={"meta": {}})
        raw = self.teacher[key]
        failures = tuple(str(f.get("kind", "failure")) for f in raw.meta.get("failures") or [] if isinstance(f, dict))
        disagreement = self.disagreements.get(key) if self.disagreements is not None else None
        return DocumentState(position, key, teacher, record, decision, confidence(raw), disagreement, failures, note)

    def position_of(self, key: str) -> int:
        """The 0-based place of ``key`` in the order."""
        if key not in self.index:
            raise UnknownDocument(f"no document with key {key!r} is under review in {self.directory}")
        return self.index[key]

    def resume_position(self, reviewer: str) -> int:
        """The first document in the order that ``reviewer`` has not decided (``total`` when all are)."""
        for position, key in enumerate(self.keys):
            if (reviewer, key) not in self._latest:
                return position
        return self.total

    def next_position(self, reviewer: str, after: int) -> Optional[int]:
        """The next document ``reviewer`` has not decided after ``after``, wrapping round; None when all are."""
        for step in range(1, self.total + 1):
            position = (after + step) % self.total
            if (reviewer, self.keys[position]) not in self._latest:
                return position
        return None

    # -- writes ---------------------------------------------------------------------------------------------

    def edit(self, key: str, record: DocRecord, edit: Edit) -> DocRecord:
        """The draft ``record`` of document ``key`` after one edit of the page (nothing is written)."""
        self.position_of(key)
        teacher, _ = self.teacher_view(key)
        if record.text != teacher.text:
            raise EditError("the record's text is not the document's text; reload the page")
        labels = tuple(dict.fromkeys([*self.category_labels, *teacher.cats]))
        return apply_edit(record, edit, self.nlp, self.schema, labels)

    def decide(self, reviewer: str, key: str, decision: Decision, record: Optional[DocRecord] = None) -> DecisionRow:
        """Write ``reviewer``'s decision on ``key`` to the store and the database; returns the row as saved.

        ``accept`` without a record keeps the teacher's answer; with one, the
        record is checked (:func:`distil.review_app.edits.check_record`) and
        saved as ``correct`` when it differs from the teacher's answer.
        ``correct`` needs the record. ``reject`` keeps the teacher's answer,
        marked rejected: training leaves it out.
        """
        self.position_of(key)
        teacher, _ = self.teacher_view(key)
        if decision == "reject":
            answer = teacher
        else:
            if record is None:
                if decision == "correct":
                    raise EditError("a correction needs the corrected record; send it in 'record'")
                record = teacher
            answer = to_record(check_record(record, teacher.text, self.nlp, self.schema))
            decision = "accept" if same_answer(answer, teacher, self.exclusive) else "correct"
        meta = {k: v for k, v in self.teacher[key].meta.items() if k not in (*TEACHER_META, *REVIEW_KEYS)}
        meta.update(key=key, reviewed=True, review=REVIEW_META[decision], reviewer=reviewer)
        stored = answer.model_copy(update={"meta": meta})
        with self._lock:
            self.store.append([stored.model_copy(deep=True)])
            row = self.log.add(reviewer, key, decision, stored)
            self._latest[(reviewer, key)] = row
        return row

    # -- progress and agreement -----------------------------------------------------------------------------

    def _snapshot(self) -> dict[tuple[str, str], DecisionRow]:
        """A copy of the latest decisions: requests run on a thread pool, and a decision may land mid-loop."""
        return dict(self._latest)

    def progress(self, reviewer: str) -> Progress:
        """How many documents ``reviewer`` decided, by decision."""
        counts = {"accept": 0, "correct": 0, "reject": 0}
        for (who, key), row in self._snapshot().items():
            if who == reviewer and key in self.index:
                counts[row.decision] += 1
        return Progress(self.total, sum(counts.values()), counts["accept"], counts["correct"], counts["reject"])

    def _doc(self, key: str, row: Optional[DecisionRow]) -> Doc:
        """The Doc of the teacher's answer (``row`` None) or of a decision, built once."""
        cache_key = (key, row.id if row is not None else -1)
        doc = self._docs.get(cache_key)
        if doc is None:
            doc = from_record(row.record if row is not None else self.teacher_view(key)[0], self.nlp)
            self._docs[cache_key] = doc
        return doc

    def teacher_agreement(self, reviewer: str) -> dict[str, Any]:
        """F1 of the teacher against ``reviewer`` per task (the reviewer as gold), over their accepted and corrected documents."""
        pairs: list[tuple[Doc, Doc]] = []
        rejected = 0
        for (who, key), row in self._snapshot().items():
            if who != reviewer or key not in self.index:
                continue
            if row.decision == "reject":
                rejected += 1
                continue
            pairs.append((self._doc(key, None), self._doc(key, row)))
        return {"documents": len(pairs), "rejected": rejected, **agreement(pairs)}

    def reviewer_agreement(self) -> dict[str, Any]:
        """How often reviewers agree on the documents two or more of them decided.

        ``same_decision``: the share of reviewer pairs on a shared document
        that both rejected it or both kept it; the F1 per task is over the
        pairs that both kept it (the second reviewer of a pair taken as gold;
        F1 is symmetric, so the order does not matter).
        """
        by_key: dict[str, dict[str, DecisionRow]] = {}
        for (who, key), row in self._snapshot().items():
            if key in self.index:
                by_key.setdefault(key, {})[who] = row
        pairs: list[tuple[Doc, Doc]] = []
        shared = compared = same = 0
        for key, rows in by_key.items():
            if len(rows) < 2:
                continue
            shared += 1
            for one, other in combinations(sorted(rows), 2):
                first, second = rows[one], rows[other]
                compared += 1
                same += (first.decision == "reject") == (second.decision == "reject")
                if "reject" not in (first.decision, second.decision):
                    pairs.append((self._doc(key, first), self._doc(key, second)))
        reviewers = sorted({who for who, _ in self._snapshot()})
        return {
            "reviewers": reviewers,
            "shared_documents": shared,
            "pairs": compared,
            "same_decision": same / compared if compared else None,
            **agreement(pairs),
        }

    def decisions(self, reviewer: Optional[str] = None) -> Sequence[DecisionRow]:
        """Every decision row in the database (of ``reviewer``, or of everyone), oldest first."""
        return self.log.rows(reviewer)


def _teacher_records(records: list[DocRecord], log: DecisionLog) -> dict[str, DocRecord]:
    """The teacher's answer of each document: the store's record, or the saved copy once a review replaced it.

    A record not marked reviewed is the teacher's (and is saved, or replaces
    the saved copy when ``annotate --retry-failed`` redid it); a reviewed one
    was written by a review, so the copy saved before it counts. A document
    reviewed elsewhere before its first serve (``review import``) has no copy:
    its reviewed record stands in for the teacher's.
    """
    saved = log.teacher_records()
    teacher: dict[str, DocRecord] = {}
    changed: list[tuple[str, DocRecord]] = []
    for record in records:
        key = key_of(record)
        if record.meta.get("reviewed") and key in saved:
            teacher[key] = saved[key]
            continue
        teacher[key] = record
        if saved.get(key) != record:
            changed.append((key, record))
    log.save_teacher_records(changed)
    return teacher
