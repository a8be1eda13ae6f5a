"""``distil_rel_encoder``: relation classification on onnxruntime, written with ``write_relations``.

Two architectures, recorded in the model's manifest (``architecture``) and
dispatched on here:

- ``pairs``: one input per candidate ordered pair, the text with typed markers
  around its head and tail; the encoder runs once per pair.
- ``one_pass``: one input per document with every entity marked; the encoder
  runs once per document (per window of a long one) and every candidate pair
  is classified from the states at its two entities' opening markers.

Both classify the same candidates (:func:`relation_candidates`: the ordered
entity pairs whose types some schema label known to the model allows) into
``no relation`` or one of the labels that pair allows, and both end with the
same decision (:func:`decide`), read from the manifest's ``decision``:

- ``{"rule": "argmax"}`` (also a manifest without one): the most probable
  class wins, ``no relation`` included;
- ``{"rule": "threshold", "threshold": t, "per_label": {label: t_label}}``:
  the most probable relation label ``L`` (``no relation`` left out) is
  predicted when its probability reaches ``per_label.get(L, t)``, otherwise
  the pair gets no relation. ``distil train rel`` tunes these on dev.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import RelationPrediction, write_relations
from ...schemas import RELSchema, ensure_schema
from .alignment import DEFAULT_BUCKET_WINDOW, bucketed_batches, pad_batch
from .component import SPEED_DEFAULTS, EncoderComponent
from .manifest import ARGMAX, NO_RELATION, THRESHOLD, ModelDirError
from .markers import EntityWindows, Mention, candidate_pairs, encode_entities, encode_pair
from .session import Runner, softmax


@dataclass(frozen=True)
class Candidate:
    """A candidate ordered pair: its document, head and tail (indices in ``doc.ents``) and the labels it allows."""

    doc: int
    head: int
    tail: int
    allowed: tuple[str, ...]


def relation_candidates(docs: Sequence[Doc], schema: RELSchema, model_labels: Sequence[str]) -> list[Candidate]:
    """Every candidate ordered pair of every doc: the pairs whose entity types a schema label known to the model allows."""
    return [
        Candidate(index, head, tail, tuple(allowed))
        for index, doc in enumerate(docs)
        for head, tail, allowed in candidate_pairs([e.label_ for e in doc.ents], schema, model_labels)
    ]


def _mention(doc: Doc, index: int) -> Mention:
    ent = doc.ents[index]
    return Mention(ent.start_char, ent.end_char, ent.label_)


def one_pass_feeds(
    documents: Sequence[EntityWindows], pairs: Sequence[Sequence[tuple[int, int]]], pad_id: int
) -> dict[str, np.ndarray]:
    """The inputs of one one-pass batch: every window of ``documents``, and one (row, position) per pair end.

    ``pairs[k]`` are the (head, tail) entity indices of ``documents[k]`` to
    classify; both entities must be readable (a row that is not ``None``).
    Training builds its batches with this function too.
    """
    windows: list[list[int]] = []
    head_row: list[int] = []
    head_index: list[int] = []
    tail_row: list[int] = []
    tail_index: list[int] = []
    for encoded, doc_pairs in zip(documents, pairs, strict=True):
        offset = len(windows)
        windows.extend(encoded.windows)
        for head, tail in doc_pairs:
            head_at, tail_at = encoded.rows[head], encoded.rows[tail]
            assert head_at is not None and tail_at is not None
            head_row.append(offset + head_at)
            head_index.append(encoded.positions[head])
            tail_row.append(offset + tail_at)
            tail_index.append(encoded.positions[tail])
    ids, mask = pad_batch(windows, pad_id)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "head_row": np.array(head_row, dtype=np.int64),
        "head_index": np.array(head_index, dtype=np.int64),
        "tail_row": np.array(tail_row, dtype=np.int64),
        "tail_index": np.array(tail_index, dtype=np.int64),
    }


def _restricted(logits: np.ndarray, class_index: Mapping[str, int], allowed: Sequence[str]) -> np.ndarray:
    # Probabilities over no relation and the labels this pair allows: the other labels cannot apply to it.
    keep = [class_index[NO_RELATION], *(class_index[name] for name in allowed)]
    return softmax(logits[keep])


def _score_pairs(
    session: Runner, docs: Sequence[Doc], candidates: Sequence[Candidate], batch_size: int, bucket_window: int
) -> list[Optional[np.ndarray]]:
    manifest = session.manifest
    class_index = {name: k for k, name in enumerate(manifest.classes)}
    inputs = []
    for k, candidate in enumerate(candidates):
        doc = docs[candidate.doc]
        encoded = encode_pair(
            session.tokenizer, doc.text, _mention(doc, candidate.head), _mention(doc, candidate.tail), manifest.max_length
        )
        if encoded is not None:
            inputs.append((k, encoded))
    out: list[Optional[np.ndarray]] = [None] * len(candidates)
    lengths = [len(item[1].ids) for item in inputs]
    owners = [candidates[item[0]].doc for item in inputs]
    for batch in bucketed_batches(lengths, batch_size, bucket_window, owners):
        ids, mask = pad_batch([inputs[i][1].ids for i in batch], session.pad_id)
        feeds = {
            "input_ids": ids,
            "attention_mask": mask,
            "head_index": np.array([inputs[i][1].head_index for i in batch], dtype=np.int64),
            "tail_index": np.array([inputs[i][1].tail_index for i in batch], dtype=np.int64),
        }
        logits = session.run(feeds)
        for row, item in enumerate(batch):
            k = inputs[item][0]
            out[k] = _restricted(logits[row], class_index, candidates[k].allowed)
    return out


def _score_one_pass(
    session: Runner, docs: Sequence[Doc], candidates: Sequence[Candidate], batch_size: int, bucket_window: int
) -> list[Optional[np.ndarray]]:
    manifest = session.manifest
    class_index = {name: k for k, name in enumerate(manifest.classes)}
    by_doc: dict[int, list[int]] = {}
    for k, candidate in enumerate(candidates):
        by_doc.setdefault(candidate.doc, []).append(k)
    encoded: dict[int, EntityWindows] = {}
    readable: dict[int, list[int]] = {}
    for doc_index, keys in by_doc.items():
        doc = docs[doc_index]
        windows = encode_entities(
            session.tokenizer, doc.text, [_mention(doc, i) for i in range(len(doc.ents))], manifest.max_length
        )
        encoded[doc_index] = windows
        readable[doc_index] = [
            k for k in keys if windows.rows[candidates[k].head] is not None and windows.rows[candidates[k].tail] is not None
        ]
    out: list[Optional[np.ndarray]] = [None] * len(candidates)
    order = [doc_index for doc_index in by_doc if readable[doc_index]]
    # batch_size counts windows here: a batch runs the encoder over its documents' windows once.
    lengths = [max(len(window) for window in encoded[doc_index].windows) for doc_index in order]
    for batch in bucketed_batches(lengths, max(1, batch_size), bucket_window, order):
        chosen = [order[i] for i in batch]
        for group in _by_window_count(chosen, encoded, batch_size):
            feeds = one_pass_feeds(
                [encoded[d] for d in group],
                [[(candidates[k].head, candidates[k].tail) for k in readable[d]] for d in group],
                session.pad_id,
            )
            logits = session.run(feeds)
            row = 0
            for doc_index in group:
                for k in readable[doc_index]:
                    out[k] = _restricted(logits[row], class_index, candidates[k].allowed)
                    row += 1
    return out


def _by_window_count(doc_indices: Sequence[int], encoded: Mapping[int, EntityWindows], limit: int) -> list[list[int]]:
    # Long documents have several windows: keep each model call at about `limit` windows.
    groups: list[list[int]] = [[]]
    used = 0
    for doc_index in doc_indices:
        count = len(encoded[doc_index].windows)
        if groups[-1] and used + count > limit:
            groups.append([])
            used = 0
        groups[-1].append(doc_index)
        used += count
    return groups


def score_candidates(
    session: Runner,
    docs: Sequence[Doc],
    candidates: Sequence[Candidate],
    batch_size: int,
    bucket_window: int = DEFAULT_BUCKET_WINDOW,
) -> list[Optional[np.ndarray]]:
    """The probabilities over ``[no relation, *candidate.allowed]`` of each candidate, by the model's architecture.

    ``None`` for a candidate the model cannot read: a per-pair input whose two
    markers do not fit in the model's length, or (one-pass) an entity whose
    marker falls in no window. Inputs are sorted by length within windows of
    ``bucket_window`` documents (0: input order) before batching.
    """
    architecture = session.manifest.architecture
    if architecture == "one_pass":
        return _score_one_pass(session, docs, candidates, batch_size, bucket_window)
    if architecture == "pairs":
        return _score_pairs(session, docs, candidates, batch_size, bucket_window)
    raise ModelDirError(f"unknown relation architecture {architecture!r} in the model manifest")


def decide(decision: Mapping[str, Any], allowed: Sequence[str], probs: np.ndarray) -> Optional[tuple[str, float]]:
    """The relation label and score a candidate gets from its probabilities, or ``None`` for no relation.

    ``probs`` are over ``[no relation, *allowed]``; ``decision`` is the
    manifest's (see the module docstring for the two rules).
    """
    rule = decision.get("rule", ARGMAX)
    if rule == ARGMAX:
        best = int(probs.argmax())
        return None if best == 0 else (allowed[best - 1], float(probs[best]))
    if rule != THRESHOLD:
        raise ModelDirError(f"unknown relation decision rule {rule!r}; expected {ARGMAX!r} or {THRESHOLD!r}")
    best = int(probs[1:].argmax()) + 1
    label = allowed[best - 1]
    per_label: Mapping[str, float] = decision.get("per_label") or {}
    threshold = float(per_label.get(label, decision.get("threshold", 0.5)))
    return (label, float(probs[best])) if probs[best] >= threshold else None


def annotate_relations(
    session: Runner, docs: list[Doc], schema: RELSchema, batch_size: int, bucket_window: int = DEFAULT_BUCKET_WINDOW
) -> None:
    """Classify every candidate ordered pair of ``doc.ents`` and write the relations found.

    Candidates are the pairs whose entity types some schema label (known to the
    model) allows; each prediction is restricted to those labels and ``no
    relation``, then decided by the manifest's decision rule. Pairs the model
    cannot read (see :func:`score_candidates`) get no relation.
    """
    manifest = session.manifest
    candidates = relation_candidates(docs, schema, manifest.labels)
    scores = score_candidates(session, docs, candidates, batch_size, bucket_window)
    found: list[list[RelationPrediction]] = [[] for _ in docs]
    for candidate, probs in zip(candidates, scores, strict=True):
        if probs is None:
            continue
        chosen = decide(manifest.decision, candidate.allowed, probs)
        if chosen is not None:
            found[candidate.doc].append(RelationPrediction(candidate.head, candidate.tail, chosen[0], chosen[1]))
    for doc, relations in zip(docs, found, strict=True):
        write_relations(doc, relations, schema)


class EncoderREL(EncoderComponent):
    """Relations between the entities already in ``doc.ents``, one prediction per candidate ordered pair."""

    distil_task = "rel"

    def predict_docs(self, docs: list[Doc]) -> None:
        """Classify the candidate pairs of ``docs`` and write the relations."""
        annotate_relations(self.session, docs, self.schema, self.batch_size, self.bucket_window)  # type: ignore[arg-type]


@Language.factory(
    "distil_rel_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32, **SPEED_DEFAULTS},
)
def make_rel_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[RELSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
    bucket_window: int = DEFAULT_BUCKET_WINDOW,
    inter_op_threads: int = 1,
    graph_optimization: str = "all",
    mem_pattern: bool = True,
    spin: bool = False,
) -> EncoderREL:
    """Build the relation encoder component from a ``distil train rel`` model directory."""
    checked = ensure_schema(schema, RELSchema, name)
    return EncoderREL(
        nlp, name, model, checked, precision, threads, batch_size, bucket_window, inter_op_threads, graph_optimization,
        mem_pattern, spin,
    )
