"""Split a long document into chunks that fit a model's context, along sentences.

Offsets are kept so that what a model finds in a chunk maps back to the doc.
Sentences come from the Doc when a component set them, else from a simple
punctuation/newline rule; a sentence longer than a chunk is cut at whitespace.
"""

from __future__ import annotations

import re

from spacy.tokens import Doc

from .protocol import Chunk

_SENT_END = re.compile(r"(?<=[.!?。！？])\s+|\n\s*\n|\n")
# A conservative characters-per-token figure for sizing chunks from a token budget.
CHARS_PER_TOKEN = 3


def sentence_bounds(doc: Doc) -> list[tuple[int, int]]:
    """Character (start, end) of each sentence of ``doc``."""
    text = doc.text
    if doc.has_annotation("SENT_START"):
        return [(s.start_char, s.end_char) for s in doc.sents]
    bounds = []
    start = 0
    for match in _SENT_END.finditer(text):
        if match.start() > start:
            bounds.append((start, match.start()))
        start = match.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def _cut(start: int, end: int, text: str, max_chars: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def split_doc(doc: Doc, max_chars: int) -> list[Chunk]:
    """Chunks of at most ``max_chars`` characters covering every sentence of ``doc``, in order.

    An empty or whitespace-only doc has no chunks.
    """
    text = doc.text
    if not text.strip():
        return []
    if len(text) <= max_chars:
        return [Chunk(0, len(text), text)]
    pieces: list[tuple[int, int]] = []
    for start, end in sentence_bounds(doc):
        pieces.extend(_cut(start, end, text, max_chars))
    chunks: list[Chunk] = []
    cur_start, cur_end = pieces[0]
    for start, end in pieces[1:]:
        if end - cur_start <= max_chars:
            cur_end = end
        else:
            chunks.append(Chunk(cur_start, cur_end, text[cur_start:cur_end]))
            cur_start, cur_end = start, end
    chunks.append(Chunk(cur_start, cur_end, text[cur_start:cur_end]))
    return chunks
