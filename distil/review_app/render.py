"""The page's HTML, from Jinja templates with autoescaping on: document text is always text, never markup.

Every value a template prints goes through Jinja's escaping (``autoescape``
is on for every template, whatever its name), so a document holding
``<script>`` or ``<b>`` shows those characters. The page's script inserts
only HTML rendered here, and the page is served with a Content-Security-Policy
that runs no inline script (:mod:`distil.review_app.app`), a second guard.

The text is cut into pieces (tokens and the whitespace after them), each a
``<span data-s data-e>`` carrying its character offsets, so the page's script
turns a text selection into offsets without re-implementing the tokenizer;
entities wrap their pieces in a ``<mark>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from jinja2 import Environment, PackageLoader, StrictUndefined
from spacy.language import Language

from ..pipeline.io.labelstudio import chosen_categories
from ..records import DocRecord
from .session import DocumentState, Progress, ReviewSession

# Label colours: the stylesheet defines classes lab-0 .. lab-9 (no inline styles: the CSP forbids them).
COLOURS = 10
UNKNOWN_LABEL = "lab-x"
# Labels 1..9 have a key each.
KEYED = 9
# Categories shown before the "more" switch (the teacher's most likely first).
CATEGORIES_SHOWN = 12

ENV = Environment(
    loader=PackageLoader("distil.review_app", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class Piece:
    """A token (``t``) or the whitespace after one (``w``), with its character offsets."""

    kind: str
    start: int
    end: int
    text: str


@dataclass
class EntityView:
    """An entity of the shown record: its index in the record, label, colour class, score and pieces."""

    index: int
    label: str
    cls: str
    score: Optional[str]
    start: int
    end: int
    pieces: list[Piece] = field(default_factory=list)
    kind: str = "ent"


@dataclass(frozen=True)
class LegendItem:
    """A label offered on the page, with its key (1..9, or none past the ninth) and colour class."""

    label: str
    key: Optional[int]
    cls: str


def label_classes(labels: tuple[str, ...]) -> dict[str, str]:
    """The colour class of each entity label, by its place in the schema."""
    return {label: f"lab-{i % COLOURS}" for i, label in enumerate(labels)}


def _score(value: Optional[float]) -> Optional[str]:
    return None if value is None else f"{value:.2f}"


def text_segments(record: DocRecord, nlp: Language, classes: dict[str, str]) -> list[Union[Piece, EntityView]]:
    """The text as pieces, the pieces inside an entity grouped under it (entities sit on token boundaries)."""
    doc = nlp.make_doc(record.text)
    pieces: list[Piece] = []
    for token in doc:
        end = token.idx + len(token.text)
        pieces.append(Piece("t", token.idx, end, token.text))
        if token.whitespace_:
            pieces.append(Piece("w", end, end + len(token.whitespace_), token.whitespace_))
    ordered = sorted(range(len(record.entities)), key=lambda i: record.entities[i].start)
    out: list[Union[Piece, EntityView]] = []
    queue = [record.entities[i] for i in ordered]
    indices = list(ordered)
    current: Optional[EntityView] = None
    for piece in pieces:
        if current is not None and piece.start >= current.end:
            current = None
        if current is None and queue and piece.start >= queue[0].start:
            ent = queue.pop(0)
            index = indices.pop(0)
            current = EntityView(index, ent.label, classes.get(ent.label, UNKNOWN_LABEL), _score(ent.score),
                                 ent.start, ent.end)
            out.append(current)
        if current is not None:
            current.pieces.append(piece)
        else:
            out.append(piece)
    return out


def document_context(session: ReviewSession, record: DocRecord, teacher: DocRecord) -> dict[str, Any]:
    """What ``_document.html`` needs to show ``record``: text pieces, relations, categories."""
    classes = label_classes(session.entity_labels)
    relations = []
    for index, rel in enumerate(record.relations):
        head, tail = record.entities[rel.head], record.entities[rel.tail]
        relations.append({
            "index": index, "label": rel.label, "score": _score(rel.score),
            "head": head.text, "head_cls": classes.get(head.label, UNKNOWN_LABEL),
            "tail": tail.text, "tail_cls": classes.get(tail.label, UNKNOWN_LABEL),
        })
    labels = list(dict.fromkeys([*session.category_labels, *teacher.cats, *record.cats]))
    # The teacher's most likely categories first; the order stays put while the reviewer clicks.
    labels.sort(key=lambda label: -teacher.cats.get(label, 0.0))
    chosen = set(chosen_categories(record.cats, not session.exclusive))
    categories = [{"label": label, "chosen": label in chosen, "score": _score(teacher.cats.get(label))}
                  for label in labels]
    # A 77-intent schema would bury the page in buttons: the teacher's first choices and the chosen ones show,
    # the others wait behind a "more" switch.
    shown = [c for i, c in enumerate(categories) if i < CATEGORIES_SHOWN or c["chosen"]]
    return {
        "segments": text_segments(record, session.nlp, classes),
        "relations": relations,
        "show_relations": bool(session.schema.relations) or bool(record.relations),
        "categories": shown,
        "more_categories": [c for c in categories if c not in shown],
        "exclusive": session.exclusive,
    }


def document_html(session: ReviewSession, record: DocRecord, teacher: DocRecord) -> str:
    """The document fragment (text with entities, relations, categories) the page swaps in after an edit."""
    return ENV.get_template("_document.html").render(document_context(session, record, teacher))


def agreement_text(values: dict[str, Any]) -> str:
    """One line of agreement figures: ``entities F 0.83 · categories accuracy 0.90``."""
    parts = []
    if "entities" in values:
        parts.append(f"entities F {values['entities']['f']:.2f}")
    if "relations" in values:
        parts.append(f"relations F {values['relations']['f']:.2f}")
    if "categories" in values and values["categories"].get("accuracy") is not None:
        parts.append(f"categories accuracy {values['categories']['accuracy']:.2f}")
    return " · ".join(parts) or "nothing to compare yet"


def _status(state: DocumentState) -> tuple[str, str]:
    if state.decision is None:
        return "open", "not reviewed yet"
    verb = {"accept": "accepted", "correct": "corrected", "reject": "rejected"}[state.decision.decision]
    when = state.decision.created_at[:19].replace("T", " ")
    return state.decision.decision, f"you {verb} this" + (f" ({when} UTC)" if when else "")


def page_html(session: ReviewSession, reviewer: str, state: Optional[DocumentState], *,
              came_from: Optional[int] = None) -> str:
    """The whole page: header with progress and agreement, the document (or the end), the keyboard map."""
    progress: Progress = session.progress(reviewer)
    teacher = session.teacher_agreement(reviewer)
    between = session.reviewer_agreement()
    classes = label_classes(session.entity_labels)
    context: dict[str, Any] = {
        "reviewer": reviewer,
        "progress": progress,
        "order": session.order,
        "teacher_documents": teacher["documents"],
        "teacher_agreement": agreement_text(teacher),
        "between": between if between["shared_documents"] else None,
        "between_agreement": agreement_text(between),
        "entity_legend": [LegendItem(label, i + 1 if i < KEYED else None, classes[label])
                          for i, label in enumerate(session.entity_labels)],
        "relation_legend": [LegendItem(label, i + 1 if i < KEYED else None, "")
                            for i, label in enumerate(session.schema.relations)],
        "exclusive": session.exclusive,
        "has_categories": bool(session.category_labels),
        "state": state,
        "came_from": came_from,
        "directory": str(session.directory),
    }
    if state is not None:
        status_class, status = _status(state)
        context.update(
            position=state.position + 1,
            status_class=status_class,
            status=status,
            confidence=f"{state.confidence:.2f}",
            disagreement=_score(state.disagreement),
            **document_context(session, state.record, state.teacher),
        )
    return ENV.get_template("page.html").render(context)


def login_html(message: Optional[str] = None) -> str:
    """The page that asks for the token when the server was started with ``--token-env``."""
    return ENV.get_template("login.html").render(message=message)
