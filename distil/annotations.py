"""The canonical writers and readers of annotations on a spaCy ``Doc``.

Every backend (rules, LLM, encoder) writes its predictions through exactly one
function per task here, so that the Doc an application gets back has the same
shape whatever computed it:

- entities: ``doc.ents``, each span with ``span._.score``;
- categories: ``doc.cats`` (every schema label present);
- relations: ``doc._.relations``, a list of :class:`Relation`;
- failures: ``doc._.failures``, what a component could not do for this doc;
- empty-answer probabilities: :func:`write_empty_score`, how sure a backend
  was that a document holds nothing of its task (no entity, no relation), the
  one confidence the annotations themselves cannot show.

Everything is stored in plain serialisable values (``doc.user_data``), so it
survives ``DocBin(store_user_data=True)`` and JSON records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Optional

from spacy.tokens import Doc, Span

from .schemas import RELSchema, SchemaError, TextCatSchema

RELATIONS_KEY = "distil.relations"
FAILURES_KEY = "distil.failures"
ENT_SCORES_KEY = "distil.ent_scores"
EMPTY_SCORES_KEY = "distil.empty_scores"


@dataclass(frozen=True)
class Relation:
    """A typed relation between two entities of a Doc.

    ``head`` and ``tail`` are the entity spans (members of ``doc.ents``); for a
    symmetric label the order carries no meaning.
    """

    head: Span
    tail: Span
    label: str
    score: Optional[float] = None

    @property
    def head_index(self) -> int:
        """Index of the head entity in ``doc.ents``."""
        return entity_index(self.head)

    @property
    def tail_index(self) -> int:
        """Index of the tail entity in ``doc.ents``."""
        return entity_index(self.tail)


@dataclass(frozen=True)
class EntityPrediction:
    """An entity found by a backend, in character offsets, before it is written."""

    start_char: int
    end_char: int
    label: str
    score: Optional[float] = None


@dataclass(frozen=True)
class RelationPrediction:
    """A relation found by a backend, between entities given by index in ``doc.ents``."""

    head: int
    tail: int
    label: str
    score: Optional[float] = None


@dataclass(frozen=True)
class Failure:
    """Something a component could not do for one document, kept on the Doc."""

    component: str
    task: str
    kind: str
    reason: str
    raw: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {"component": self.component, "task": self.task, "kind": self.kind, "reason": self.reason, "raw": self.raw}


# Failure kinds that say the configuration is wrong, not the document (a
# rejected API key, an unknown model or endpoint): they repeat on every document
# until a person fixes the configuration, so an annotation run stops at the
# first one instead of writing the whole corpus as failed.
SYSTEMIC_FAILURE_KINDS: frozenset[str] = frozenset({"auth_error", "model_not_found"})


# --- extensions ------------------------------------------------------------------


def _span_score(span: Span) -> Optional[float]:
    scores = span.doc.user_data.get(ENT_SCORES_KEY) or {}
    value = scores.get(f"{span.start_char}:{span.end_char}:{span.label_}")
    return None if value is None else float(value)


def _get_relations(doc: Doc) -> list[Relation]:
    rows = doc.user_data.get(RELATIONS_KEY) or []
    by_offsets = {(ent.start, ent.end): ent for ent in doc.ents}
    out = []
    for head_start, head_end, tail_start, tail_end, label, score in rows:
        head = by_offsets.get((head_start, head_end))
        tail = by_offsets.get((tail_start, tail_end))
        if head is None or tail is None:
            # The entities were replaced after the relation was written: the
            # relation no longer refers to anything in doc.ents.
            continue
        out.append(Relation(head, tail, label, score))
    return out


def _set_relations(doc: Doc, relations: Iterable[Relation]) -> None:
    write_relations(
        doc,
        [RelationPrediction(entity_index(r.head), entity_index(r.tail), r.label, r.score) for r in relations],
    )


def _get_failures(doc: Doc) -> list[Failure]:
    return [Failure(**row) for row in doc.user_data.get(FAILURES_KEY) or []]


def register_extensions() -> None:
    """Register ``span._.score``, ``doc._.relations`` and ``doc._.failures`` (idempotent)."""
    if not Span.has_extension("score"):
        Span.set_extension("score", getter=_span_score)
    if not Doc.has_extension("relations"):
        Doc.set_extension("relations", getter=_get_relations, setter=_set_relations)
    if not Doc.has_extension("failures"):
        Doc.set_extension("failures", getter=_get_failures)


register_extensions()


# --- helpers ---------------------------------------------------------------------


def entity_index(span: Span) -> int:
    """The index of ``span`` in ``span.doc.ents``; raises if it is not an entity."""
    for i, ent in enumerate(span.doc.ents):
        if ent.start == span.start and ent.end == span.end:
            return i
    raise ValueError(f"span {span.text!r} ({span.start_char}-{span.end_char}) is not in doc.ents")


def char_span(doc: Doc, start: int, end: int, label: str = "") -> Optional[Span]:
    """A token-aligned span for character offsets, expanding to token boundaries.

    Returns ``None`` for empty or out-of-range offsets. Offsets that cut a token
    (an LLM grounded "Paris" inside "Paris-based") are expanded to whole tokens,
    which is what a token-level annotation can represent.
    """
    # doc.text is rebuilt on every access: with one call per entity, a long
    # doc would make writing its entities quadratic.
    text_length = doc[-1].idx + len(doc[-1].text_with_ws) if len(doc) else 0
    if start < 0 or end > text_length or start >= end:
        return None
    span = doc.char_span(start, end, label=label, alignment_mode="strict")
    if span is None:
        span = doc.char_span(start, end, label=label, alignment_mode="expand")
    if span is None or len(span) == 0:
        return None
    return span


# --- writers ---------------------------------------------------------------------

OverlapPolicy = Literal["score", "longest"]


def write_entities(
    doc: Doc,
    entities: Iterable[EntityPrediction | Span],
    *,
    keep_existing: bool = False,
    overlap: OverlapPolicy = "score",
    labels: Optional[Iterable[str]] = None,
) -> Doc:
    """Set ``doc.ents`` (with scores) from predictions; the canonical NER writer.

    Overlapping predictions are resolved by ``overlap``: highest score first
    (ties to the longer span), or longest first as spaCy's ``filter_spans``.
    With ``keep_existing`` the current entities win over new ones that overlap
    them. If ``labels`` is given, a prediction with another label raises
    :class:`SchemaError`. Relations whose entities disappear are dropped.
    """
    allowed = None if labels is None else set(labels)
    candidates: list[tuple[Span, Optional[float]]] = []
    for ent in entities:
        if isinstance(ent, Span):
            span: Optional[Span] = ent if ent.doc is doc else Span(doc, ent.start, ent.end, label=ent.label_)
            score = _span_score(ent)
        else:
            span = char_span(doc, ent.start_char, ent.end_char, ent.label)
            score = ent.score
        if span is None:
            continue
        if allowed is not None and span.label_ not in allowed:
            raise SchemaError(f"entity label {span.label_!r} is not in the schema ({', '.join(sorted(allowed))})")
        candidates.append((span, score))

    existing_scores = {
        (e.start, e.end, e.label_): _span_score(e) for e in doc.ents
    } if keep_existing else {}
    chosen: list[Span] = []
    scores: dict[str, float] = {}

    def key(item: tuple[Span, Optional[float]]) -> tuple[float, int]:
        span, score = item
        if overlap == "score":
            return (-(score if score is not None else 1.0), -len(span))
        return (-len(span), span.start)

    taken: set[int] = set()
    ordered: list[tuple[Span, Optional[float]]] = []
    if keep_existing:
        ordered.extend((e, existing_scores[(e.start, e.end, e.label_)]) for e in doc.ents)
    ordered.extend(sorted(candidates, key=key))
    for span, score in ordered:
        tokens = set(range(span.start, span.end))
        if tokens & taken:
            continue
        taken |= tokens
        chosen.append(span)
        if score is not None:
            scores[f"{span.start_char}:{span.end_char}:{span.label_}"] = float(score)
    old_relations = doc.user_data.get(RELATIONS_KEY) or []
    doc.ents = sorted(chosen, key=lambda s: s.start)
    doc.user_data[ENT_SCORES_KEY] = scores
    ent_offsets = {(e.start, e.end) for e in doc.ents}
    doc.user_data[RELATIONS_KEY] = [
        row for row in old_relations if (row[0], row[1]) in ent_offsets and (row[2], row[3]) in ent_offsets
    ]
    return doc


def write_cats(doc: Doc, scores: Mapping[str, float], schema: Optional[TextCatSchema] = None) -> Doc:
    """Set ``doc.cats``; the canonical text-classification writer.

    With a schema, labels outside it raise :class:`SchemaError` and every schema
    label gets a score (0.0 when the backend gave none), so that all backends
    produce the same keys.
    """
    if schema is not None:
        schema.check_labels(scores, what="predicted categories")
        doc.cats = {label: float(scores.get(label, 0.0)) for label in schema.label_names}
    else:
        doc.cats = {label: float(score) for label, score in scores.items()}
    return doc


def write_relations(
    doc: Doc,
    relations: Iterable[RelationPrediction],
    schema: Optional[RELSchema] = None,
    *,
    keep_existing: bool = False,
) -> Doc:
    """Set ``doc._.relations``; the canonical relation writer.

    Relations refer to entities by index in ``doc.ents``. With a schema, unknown
    labels raise :class:`SchemaError`, symmetric relations are stored with head
    before tail, and duplicates keep the highest score. A relation of an entity
    to itself is rejected.
    """
    ents = list(doc.ents)
    best: dict[tuple[int, int, int, int, str], Optional[float]] = {}
    if keep_existing:
        for row in doc.user_data.get(RELATIONS_KEY) or []:
            best[tuple(row[:5])] = row[5]  # type: ignore[index]
    for rel in relations:
        if not (0 <= rel.head < len(ents) and 0 <= rel.tail < len(ents)):
            raise IndexError(f"relation {rel.label!r} refers to entity {rel.head}/{rel.tail}, doc has {len(ents)}")
        if rel.head == rel.tail:
            raise ValueError(f"relation {rel.label!r} links entity {rel.head} to itself")
        head, tail = ents[rel.head], ents[rel.tail]
        if schema is not None:
            spec = schema.get(rel.label)
            if spec.symmetric and head.start > tail.start:
                head, tail = tail, head
        key = (head.start, head.end, tail.start, tail.end, rel.label)
        previous = best.get(key, None)
        if key not in best or (rel.score is not None and (previous is None or rel.score > previous)):
            best[key] = None if rel.score is None else float(rel.score)
    doc.user_data[RELATIONS_KEY] = [[*key, score] for key, score in best.items()]
    return doc


def record_failure(doc: Doc, failure: Failure) -> None:
    """Keep a failure on the Doc (``doc._.failures``); the doc's other annotations stay."""
    doc.user_data.setdefault(FAILURES_KEY, []).append(failure.to_dict())


def entity_score(span: Span) -> Optional[float]:
    """The score stored for an entity span, or ``None`` when its backend gave none."""
    return _span_score(span)


def write_empty_score(doc: Doc, task: str, probability: Optional[float]) -> None:
    """Keep the probability a backend gave to answering "nothing" for ``task`` on ``doc`` (``None`` clears it).

    A document without entities (or relations) has no entity score to show
    how sure its backend was that there is none; an LLM's answer ``[]`` has a
    probability all the same, and the document's confidence
    (:mod:`distil.confidence`) needs it, or every empty document would look
    alike to a review ordered by doubt.
    """
    scores = dict(doc.user_data.get(EMPTY_SCORES_KEY) or {})
    if probability is None:
        scores.pop(task, None)
    else:
        scores[task] = float(probability)
    doc.user_data[EMPTY_SCORES_KEY] = scores


def empty_scores(doc: Doc) -> dict[str, float]:
    """The empty-answer probabilities written on ``doc`` by task (see :func:`write_empty_score`)."""
    return {str(task): float(value) for task, value in (doc.user_data.get(EMPTY_SCORES_KEY) or {}).items()}
