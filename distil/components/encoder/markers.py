"""Typed entity markers for relation classification, shared by training and the runtime.

Two layouts, one per relation architecture:

- ``pairs``: a candidate pair is one input: the text with typed markers around
  the head (``@ * type * ... @``) and the tail (``# ^ type ^ ... #``), made of
  punctuation the tokenizer already knows (Zhou and Chen, 2021, "An Improved
  Baseline for Sentence-level Relation Extraction"), so no vocabulary change is
  needed. The classifier reads the hidden states at the two opening markers.
- ``one_pass``: a document is one input with every entity marked
  (``@ * type * ... @``); each entity is read at its opening marker and every
  candidate pair is classified from those states, so the encoder runs once per
  document (:func:`encode_entities`), not once per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from tokenizers import Tokenizer

from ...schemas import RELSchema


@dataclass(frozen=True)
class Mention:
    """An entity of a candidate pair: character offsets and label."""

    start: int
    end: int
    label: str


@dataclass
class PairInput:
    """One model input for a candidate pair."""

    ids: list[int]
    head_index: int
    tail_index: int


def _type_words(label: str) -> str:
    return label.replace("_", " ").replace("-", " ").lower()


def mark_pair(text: str, head: Mention, tail: Mention) -> tuple[str, int, int]:
    """The text with typed markers, and the character offsets of the head and tail markers."""
    edits = [
        (head.start, head.end, f"@ * {_type_words(head.label)} * ", " @", "head"),
        (tail.start, tail.end, f"# ^ {_type_words(tail.label)} ^ ", " #", "tail"),
    ]
    edits.sort(key=lambda edit: edit[0])
    out: list[str] = []
    cursor = 0
    positions: dict[str, int] = {}
    length = 0
    for start, end, opening, closing, role in edits:
        piece = text[cursor:start]
        out.append(piece)
        length += len(piece)
        if out and length and not text[:start].endswith(" "):
            out.append(" ")
            length += 1
        positions[role] = length
        inner = f"{opening}{text[start:end]}{closing} "
        out.append(inner)
        length += len(inner)
        cursor = end
    out.append(text[cursor:])
    return "".join(out), positions["head"], positions["tail"]


def encode_pair(tokenizer: Tokenizer, text: str, head: Mention, tail: Mention, max_length: int) -> Optional[PairInput]:
    """Encode one candidate pair; ``None`` if the two markers cannot fit in ``max_length`` ids.

    Long inputs are cropped to a window around the two markers so that
    relations in long documents are still classified.
    """
    marked, head_char, tail_char = mark_pair(text, head, tail)
    encoding = tokenizer.encode(marked)
    head_index = encoding.char_to_token(head_char)
    tail_index = encoding.char_to_token(tail_char)
    if head_index is None or tail_index is None:
        return None
    ids = list(encoding.ids)
    if len(ids) <= max_length:
        return PairInput(ids, head_index, tail_index)
    # Keep [CLS] and [SEP]; centre a window of the inner ids on the two markers.
    first, last = min(head_index, tail_index), max(head_index, tail_index)
    inner = max_length - 2
    if last - first + 1 > inner:
        return None
    slack = inner - (last - first + 1)
    start = max(1, first - slack // 2)
    end = min(len(ids) - 1, start + inner)
    start = max(1, end - inner)
    cropped = [ids[0], *ids[start:end], ids[-1]]
    return PairInput(cropped, head_index - start + 1, tail_index - start + 1)


def candidate_pairs(
    labels: Sequence[str], schema: RELSchema, model_labels: Optional[Sequence[str]] = None
) -> list[tuple[int, int, list[str]]]:
    """Ordered entity pairs ``(head, tail, allowed relation labels)`` the schema allows.

    ``labels`` are the entity labels in ``doc.ents`` order. A pair is a
    candidate when at least one relation label (known to the model, if
    ``model_labels`` is given) allows its head and tail types.
    """
    known = None if model_labels is None else set(model_labels)
    pairs = []
    for head, head_label in enumerate(labels):
        for tail, tail_label in enumerate(labels):
            if head == tail:
                continue
            allowed = [name for name in schema.allowed_labels(head_label, tail_label) if known is None or name in known]
            if allowed:
                pairs.append((head, tail, allowed))
    return pairs


def mark_entities(text: str, mentions: Sequence[Mention]) -> tuple[str, list[int]]:
    """The text with every mention marked ``@ * type * ... @``, and each opening marker's character offset.

    Offsets are returned in the order of ``mentions``; mentions must not overlap
    (``doc.ents`` never do).
    """
    order = sorted(range(len(mentions)), key=lambda k: mentions[k].start)
    out: list[str] = []
    positions = [0] * len(mentions)
    cursor = 0
    length = 0
    for k in order:
        mention = mentions[k]
        piece = text[cursor : mention.start]
        out.append(piece)
        length += len(piece)
        if length and not text[: mention.start].endswith(" "):
            out.append(" ")
            length += 1
        positions[k] = length
        inner = f"@ * {_type_words(mention.label)} * {text[mention.start : mention.end]} @ "
        out.append(inner)
        length += len(inner)
        cursor = mention.end
    out.append(text[cursor:])
    return "".join(out), positions


@dataclass
class EntityWindows:
    """The model inputs of one document for the one-pass layout.

    ``windows`` are token id rows (one unless the marked document is longer than
    the model's length); entity ``k`` is read at ``windows[rows[k]][positions[k]]``,
    or cannot be read when ``rows[k]`` is ``None``.
    """

    windows: list[list[int]]
    rows: list[Optional[int]]
    positions: list[int]


def encode_entities(tokenizer: Tokenizer, text: str, mentions: Sequence[Mention], max_length: int) -> EntityWindows:
    """Encode a document with every mention marked, cut into windows of at most ``max_length`` ids.

    A document that does not fit is cut into windows overlapping by half, each
    with ``[CLS]`` and ``[SEP]``; every entity is read in the window where its
    marker is farthest from an edge, so it keeps as much context as possible.
    """
    marked, chars = mark_entities(text, mentions)
    encoding = tokenizer.encode(marked)
    ids = list(encoding.ids)
    markers = [encoding.char_to_token(char) for char in chars]
    if len(ids) <= max_length:
        return EntityWindows([ids], [None if m is None else 0 for m in markers], [0 if m is None else m for m in markers])
    inner = max(1, max_length - 2)
    stride = max(1, inner // 2)
    starts = list(range(1, max(2, len(ids) - 1 - inner + stride), stride))
    if starts[-1] + inner < len(ids) - 1:
        starts.append(len(ids) - 1 - inner)
    windows = [[ids[0], *ids[start : start + inner], ids[-1]] for start in starts]
    rows: list[Optional[int]] = []
    positions: list[int] = []
    for marker in markers:
        best: Optional[tuple[int, int]] = None
        for row, start in enumerate(starts):
            if marker is not None and start <= marker < start + inner:
                margin = min(marker - start, start + inner - 1 - marker)
                if best is None or margin > best[1]:
                    best = (row, margin)
        rows.append(None if best is None or marker is None else best[0])
        positions.append(0 if best is None or marker is None else marker - starts[best[0]] + 1)
    return EntityWindows(windows, rows, positions)
