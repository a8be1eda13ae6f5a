"""Typed entity markers for relation classification, shared by training and the runtime.

A candidate pair is one input: the text with typed markers around the head
(``@ * type * ... @``) and the tail (``# ^ type ^ ... #``), made of punctuation
the tokenizer already knows (Zhou and Chen, 2021, "An Improved Baseline for
Sentence-level Relation Extraction"), so no vocabulary change is needed. The
classifier reads the hidden states at the two opening markers.
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
