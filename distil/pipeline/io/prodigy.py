"""Prodigy-style JSONL, both directions, so a person can correct annotations and bring them back.

One task a line::

    {"text": "...", "tokens": [{"text", "start", "end", "id", "ws"}],
     "spans": [{"start", "end", "label", "token_start", "token_end"}],
     "relations": [{"head", "child", "head_span", "child_span", "label"}],
     "options": [{"id", "text"}], "accept": ["LABEL"], "answer": "accept", "meta": {...}}

Reading (``convert``): tasks answered ``reject`` or ``ignore`` are skipped and counted, a task with no
``answer`` is read as data (``review import`` counts only answered tasks as reviewed);
relations are matched to the spans by their character offsets (or, without
``head_span``/``child_span``, by the ``head``/``child`` token index); the
categories are ``options`` (plus any given label set) with 1.0 for the accepted
ones. Writing: every entity, relation and category of the Doc, with the distil
meta under ``meta``, and no ``answer`` (that is the reviewer's to give). Scores ride along (``score`` on spans and relations,
``distil_cats`` for category scores that are not 0/1) and are kept on reading
unless the person changed the accepted choices, so a round trip is lossless.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

from ...annotations import (
    FAILURES_KEY,
    EntityPrediction,
    RelationPrediction,
    char_span,
    entity_score,
    write_cats,
    write_entities,
    write_relations,
)
from ...records import META_KEY, to_record
from .conversion_report import ConversionReport, read_lines

SKIPPED_ANSWERS = ("reject", "ignore")
CATS_SCORES_KEY = "distil_cats"


class _BadTask(ValueError):
    """A task that cannot become a Doc; ``reason`` groups it in the report, ``detail`` says more."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# --- writing ---------------------------------------------------------------------


def _span_dict(span: Span) -> dict[str, Any]:
    data: dict[str, Any] = {
        "start": span.start_char,
        "end": span.end_char,
        "token_start": span.start,
        "token_end": span.end - 1,
        "label": span.label_,
    }
    score = entity_score(span)
    if score is not None:
        data["score"] = score
    return data


def to_prodigy(doc: Doc) -> dict[str, Any]:
    """The Prodigy task of a Doc: text, tokens, spans, relations, category choices and meta."""
    task: dict[str, Any] = {
        "text": doc.text,
        "tokens": [
            {"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "id": t.i, "ws": bool(t.whitespace_)}
            for t in doc
        ],
        "spans": [_span_dict(ent) for ent in doc.ents],
    }
    relations = []
    for rel in doc._.relations:
        item: dict[str, Any] = {
            "head": rel.head.end - 1,
            "child": rel.tail.end - 1,
            "head_span": _span_dict(rel.head),
            "child_span": _span_dict(rel.tail),
            "label": rel.label,
        }
        if rel.score is not None:
            item["score"] = rel.score
        relations.append(item)
    if relations:
        task["relations"] = relations
    if doc.cats:
        task["options"] = [{"id": label, "text": label} for label in doc.cats]
        task["accept"] = [label for label, score in doc.cats.items() if score >= 0.5]
        if any(score not in (0.0, 1.0) for score in doc.cats.values()):
            task[CATS_SCORES_KEY] = dict(doc.cats)
    meta = to_record(doc).meta
    if meta:
        task["meta"] = meta
    # No "answer": only the reviewer gives one. An exported task that came back unanswered
    # must not pass for a reviewed one (and be up-weighted in training as if a person checked it).
    return task


def write_prodigy(docs: Iterable[Doc], path: str | Path, report: ConversionReport | None = None) -> int:
    """Write Docs as Prodigy-style JSONL (one task a line); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(to_prodigy(doc), ensure_ascii=False) + "\n")
            if report is not None:
                report.add_doc(doc)
            count += 1
    return count


# --- reading ---------------------------------------------------------------------


def _tokens_doc(task: dict[str, Any], text: str, nlp: Language) -> Doc | None:
    """The Doc of the task's own tokens, or None when they are absent or do not spell the text."""
    tokens = task.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        return None
    words: list[str] = []
    spaces: list[bool] = []
    for token in tokens:
        if not isinstance(token, dict) or not isinstance(token.get("text"), str) or not token["text"]:
            return None
        words.append(token["text"])
        spaces.append(bool(token.get("ws", True)))
    if "".join(w + (" " if s else "") for w, s in zip(words, spaces, strict=True)) != text:
        return None
    return Doc(nlp.vocab, words=words, spaces=spaces)


def _offsets(span: Any, what: str) -> tuple[int, int, str]:
    if not isinstance(span, dict):
        raise _BadTask(f"{what} is not an object")
    start, end, label = span.get("start"), span.get("end"), span.get("label", "")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise _BadTask(f"{what} without integer start/end", repr(span)[:80])
    if not isinstance(label, str):
        raise _BadTask(f"{what} label is not a string", repr(label))
    return start, end, label


def _score(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cats(task: dict[str, Any], labels: Sequence[str] | None) -> dict[str, float] | None:
    options = task.get("options")
    accept = task.get("accept")
    if isinstance(accept, list):
        names = [str(o.get("id")) for o in options if isinstance(o, dict)] if isinstance(options, list) else []
        accepted = [str(label) for label in accept]
        label_set = list(dict.fromkeys([*(labels or []), *names, *accepted]))
        scores = task.get(CATS_SCORES_KEY)
        if isinstance(scores, dict) and {k for k, v in scores.items() if _score(v) is not None and v >= 0.5} == set(
            accepted
        ):
            # The person kept the choices the scores imply: keep the scores.
            return {str(k): float(v) for k, v in scores.items()}
        return {label: 1.0 if label in accepted else 0.0 for label in label_set}
    label = task.get("label")
    if isinstance(label, str) and label and not task.get("spans"):
        # A binary classification task (textcat.teach): the accepted answer means this label applies.
        return {name: 1.0 if name == label else 0.0 for name in dict.fromkeys([*(labels or []), label])}
    return None


def task_to_doc(task: dict[str, Any], nlp: Language, labels: Sequence[str] | None = None) -> Doc:
    """The Doc of one accepted Prodigy task; raises ``ValueError`` saying why when it cannot be built."""
    text = task.get("text")
    if not isinstance(text, str):
        raise _BadTask("no 'text' string")
    if not text.strip():
        raise _BadTask("empty text")
    doc = _tokens_doc(task, text, nlp) or nlp.make_doc(text)
    spans = task.get("spans") or []
    if not isinstance(spans, list):
        raise _BadTask("'spans' is not a list")
    predictions = []
    for span in spans:
        start, end, label = _offsets(span, "span")
        if char_span(doc, start, end) is None:
            raise _BadTask("span outside the text", f"{start}-{end} {label}")
        predictions.append(EntityPrediction(start, end, label, _score(span.get("score"))))
    write_entities(doc, predictions, overlap="longest")
    if len(doc.ents) != len(predictions):
        raise _BadTask("overlapping spans")
    relations = task.get("relations") or []
    if not isinstance(relations, list):
        raise _BadTask("'relations' is not a list")
    # Relations name their spans by the task's offsets, which may have been widened to whole tokens.
    token_index = {(ent.start, ent.end): i for i, ent in enumerate(doc.ents)}
    by_chars: dict[tuple[int, int], int] = {}
    for prediction in predictions:
        placed = char_span(doc, prediction.start_char, prediction.end_char)
        if placed is not None and (placed.start, placed.end) in token_index:
            by_chars[(prediction.start_char, prediction.end_char)] = token_index[(placed.start, placed.end)]
    rows = []
    for relation in relations:
        if not isinstance(relation, dict) or not isinstance(relation.get("label"), str):
            raise _BadTask("relation without a label")
        ends = []
        for span_key, token_key in (("head_span", "head"), ("child_span", "child")):
            index: int | None = None
            if relation.get(span_key) is not None:
                start, end, _ = _offsets(relation[span_key], span_key)
                index = by_chars.get((start, end))
            elif isinstance(relation.get(token_key), int):
                token = relation[token_key]
                index = next((i for i, e in enumerate(doc.ents) if e.start <= token < e.end), None)
            if index is None:
                raise _BadTask("relation endpoint is not one of the spans", f"{relation['label']} {span_key}")
            ends.append(index)
        if ends[0] == ends[1]:
            raise _BadTask("relation from a span to itself", relation["label"])
        rows.append(RelationPrediction(ends[0], ends[1], relation["label"], _score(relation.get("score"))))
    write_relations(doc, rows)
    cats = _cats(task, labels)
    if cats is not None:
        write_cats(doc, cats)
    meta = task.get("meta")
    if isinstance(meta, dict) and meta:
        meta = dict(meta)
        failures = meta.pop("failures", None)
        if isinstance(failures, list) and failures:
            doc.user_data[FAILURES_KEY] = list(failures)
        if meta:
            doc.user_data[META_KEY] = meta
    return doc


def read_prodigy(
    path: str | Path, nlp: Language, report: ConversionReport, *, labels: Sequence[str] | None = None
) -> Iterator[Doc]:
    """Yield a Doc per accepted task of a Prodigy-style JSONL file.

    Rejected or ignored tasks, malformed JSON, spans outside the text or
    overlapping, and relations whose ends are not spans are counted on
    ``report`` (with file:line) and left out.
    """
    path = Path(path)
    source = str(path)
    seen_content = False
    for number, line in read_lines(path, report):
        if not line.strip():
            continue
        seen_content = True
        try:
            task = json.loads(line)
        except json.JSONDecodeError as err:
            report.skip(source, number, "malformed JSON", f"{err.msg}, column {err.colno}")
            continue
        if not isinstance(task, dict):
            report.skip(source, number, "not a JSON object")
            continue
        answer = task.get("answer", "accept")
        if answer in SKIPPED_ANSWERS:
            report.skip(source, number, f"answer {answer!r}")
            continue
        try:
            doc = task_to_doc(task, nlp, labels)
        except _BadTask as err:
            report.skip(source, number, err.reason, err.detail or None)
            continue
        except (ValueError, TypeError, IndexError, KeyError) as err:
            report.skip(source, number, "invalid task", str(err)[:120])
            continue
        yield doc
    if not seen_content:
        report.skip(source, 1, "empty file")
