"""Sub-word to spaCy-token alignment and BIO tags, shared by training and the runtime.

A word (spaCy token) is labelled on its first sub-word; the other sub-words
are ignored in the loss and at prediction time. Documents longer than the
model's maximum length are cut into chunks at word boundaries, so that no
word of a long document is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from tokenizers import Encoding, Tokenizer

OUTSIDE = "O"
IGNORE = -100


def bio_classes(labels: Sequence[str]) -> list[str]:
    """The BIO class list for entity ``labels``: ``O`` then ``B-X``, ``I-X`` per label."""
    classes = [OUTSIDE]
    for label in labels:
        classes.extend((f"B-{label}", f"I-{label}"))
    return classes


def load_tokenizer(path: str) -> Tokenizer:
    """A ``tokenizers`` tokenizer with no padding or truncation (we control both)."""
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def word_chunks(word_token_counts: Sequence[int], max_tokens: int) -> list[tuple[int, int]]:
    """Cut words into consecutive ranges whose sub-word counts fit ``max_tokens``.

    A single word longer than ``max_tokens`` gets a range of its own (its
    sub-words are then truncated, but its first sub-word, which carries the
    label, survives).
    """
    chunks: list[tuple[int, int]] = []
    start, used = 0, 0
    for index, count in enumerate(word_token_counts):
        if used + count > max_tokens and index > start:
            chunks.append((start, index))
            start, used = index, 0
        used += count
    chunks.append((start, len(word_token_counts)))
    return chunks


@dataclass
class WordPiece:
    """One model input for a chunk of words: token ids and each word's first sub-word position."""

    ids: list[int]
    first_token: list[int]  # per word of the chunk; -1 when the word has no sub-word (whitespace)
    word_start: int


def encode_words(tokenizer: Tokenizer, words: Sequence[str], max_length: int) -> list[WordPiece]:
    """Encode pre-tokenised ``words`` into one or more inputs of at most ``max_length`` ids."""
    # Special tokens ([CLS], [SEP]) take the room the chunk may not use.
    specials = tokenizer.num_special_tokens_to_add(False)
    budget = max(1, max_length - specials)
    full = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    counts = [0] * len(words)
    for word_id in full.word_ids:
        if word_id is not None:
            counts[word_id] += 1
    pieces = []
    for start, end in word_chunks(counts, budget):
        encoding = tokenizer.encode(list(words[start:end]), is_pretokenized=True)
        pieces.append(_piece(encoding, start, end - start, max_length))
    return pieces


def _piece(encoding: Encoding, word_start: int, n_words: int, max_length: int) -> WordPiece:
    ids = list(encoding.ids)
    word_ids = list(encoding.word_ids)
    if len(ids) > max_length:
        # Only a single over-long word can get here: keep its head and the final [SEP].
        ids = [*ids[: max_length - 1], ids[-1]]
        word_ids = [*word_ids[: max_length - 1], word_ids[-1]]
    first = [-1] * n_words
    for position, word_id in enumerate(word_ids):
        if word_id is not None and 0 <= word_id < n_words and first[word_id] < 0:
            first[word_id] = position
    return WordPiece(ids=ids, first_token=first, word_start=word_start)


def decode_bio(
    tags: Sequence[str], scores: Sequence[float]
) -> list[tuple[int, int, str, float]]:
    """Entity spans ``(start, end, label, score)`` over words from BIO tags.

    An ``I-X`` that does not continue an ``X`` entity starts a new one (models
    make that mistake; dropping the entity would lose a likely mention). The
    score is the mean probability of the entity's tags.
    """
    spans: list[tuple[int, int, str, float]] = []
    start: Optional[int] = None
    label = ""
    total = 0.0

    def close(end: int) -> None:
        if start is not None:
            spans.append((start, end, label, total / (end - start)))

    for index, (tag, score) in enumerate(zip(tags, scores, strict=True)):
        if tag == OUTSIDE or "-" not in tag:
            close(index)
            start = None
            continue
        prefix, name = tag.split("-", 1)
        if prefix == "I" and start is not None and name == label:
            total += score
            continue
        close(index)
        start, label, total = index, name, score
    close(len(tags))
    return spans


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id sequences into ``(input_ids, attention_mask)`` int64 arrays."""
    width = max((len(seq) for seq in sequences), default=0)
    ids = np.full((len(sequences), max(width, 1)), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding, faster inference)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    size = max(1, batch_size)
    return [order[i : i + size] for i in range(0, len(order), size)]
