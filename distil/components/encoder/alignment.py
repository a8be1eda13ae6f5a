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
# Documents whose inputs are sorted by sub-word length together. Sorting never reaches beyond one nlp.pipe
# batch (spaCy's nlp.batch_size, 1000 by default), so this default sorts whole batches, as the components
# did before the window was a setting.
DEFAULT_BUCKET_WINDOW = 1000


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
    """Encode pre-tokenised ``words`` into one or more inputs of at most ``max_length`` ids.

    A document that fits in one input (the common case: a sentence, a tweet)
    is encoded once: the special tokens are added to the encoding already made
    to count its sub-words, instead of encoding the words a second time. Only a
    document longer than ``max_length`` is encoded again, chunk by chunk; both
    paths give the same inputs (a test compares them).
    """
    # Special tokens ([CLS], [SEP]) take the room the chunk may not use.
    specials = tokenizer.num_special_tokens_to_add(False)
    budget = max(1, max_length - specials)
    full = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    if len(full.ids) <= budget:
        return [_piece(tokenizer.post_process(full), 0, len(words), max_length)]
    return encode_chunks(tokenizer, words, full, budget, max_length)


def encode_chunks(tokenizer: Tokenizer, words: Sequence[str], full: Encoding, budget: int, max_length: int) -> list[WordPiece]:
    """The general path of :func:`encode_words`: cut at word boundaries into ``budget`` sub-words, encode each chunk."""
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
    """Indices grouped into batches of similar length (less padding, faster inference): one window over all."""
    return bucketed_batches(lengths, batch_size, window=max(1, len(lengths)))


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, window: int, owners: Optional[Sequence[int]] = None
) -> list[list[int]]:
    """Indices of model inputs grouped into batches, sorted by length within windows of ``window`` documents.

    ``lengths`` are the inputs' sub-word counts; ``owners`` the document of
    each input (non-decreasing, as the annotate functions build them; ``None``:
    one input per document). Within each window of ``window`` consecutive
    documents the inputs are sorted by length (stable: ties keep input order)
    and cut into batches of ``batch_size``, so a batch pads to the length of
    inputs much like its own instead of to the longest input around it.
    ``window = 0`` turns sorting off: batches in input order (the baseline the
    bucketing is measured against). Every index appears exactly once; callers
    write each result back by index, which restores the input order.
    """
    if window < 0:
        raise ValueError(f"bucket window must be 0 (off) or a number of documents, got {window}")
    size = max(1, batch_size)
    count = len(lengths)
    if window == 0:
        return [list(range(start, min(start + size, count))) for start in range(0, count, size)]
    owner: Sequence[int] = owners if owners is not None else range(count)
    if len(owner) != count:
        raise ValueError(f"{len(owner)} owners for {count} inputs")
    batches: list[list[int]] = []
    start = 0
    while start < count:
        end = start
        while end < count and owner[end] - owner[start] < window:
            end += 1
        order = sorted(range(start, end), key=lambda i: lengths[i])
        batches.extend(order[i : i + size] for i in range(0, len(order), size))
        start = end
    return batches
