"""Reproducible random samples of a corpus: the one sampling rule every subset in distil uses.

``evaluate --limit``, ``compare --limit`` and ``distil sample`` (train/dev
splits, the texts a teacher annotates, a test sample) all draw their subset
with :func:`sample_indices`: N documents chosen uniformly at random with a
seeded generator. Taking the first N instead would be biased whenever a file
is sorted (BANKING77's test file is sorted by label: its first 300 documents
hold 8 of the 77 intents). ``evaluate --limit`` keeps the chosen documents in
corpus order (order does not change a score); ``distil sample`` writes them
shuffled, because its files feed steps where order matters: the teacher
annotates them in order, and anything that later takes a head of the file
(``annotate --limit``, a review cut off early) would otherwise get the first
labels of a sorted corpus.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, TypeVar

import spacy

from ..components.llm.examples import load_examples
from ..components.llm.retrieval import normalise_text
from ..corpus import read_docs, write_docs

T = TypeVar("T")


def sample_indices(total: int, n: int, *, seed: int = 0) -> list[int]:
    """The indices of a seeded uniform random sample of ``n`` out of ``total`` items, in increasing order.

    The same ``(total, n, seed)`` always gives the same indices (Python's
    ``random.Random(seed).sample``, stable across platforms). Raises
    ``ValueError`` when ``n`` is negative or larger than ``total``.
    """
    if n < 0 or n > total:
        raise ValueError(f"cannot sample {n} of {total} documents; give a number from 0 to {total}")
    return sorted(random.Random(seed).sample(range(total), n))


def take_sample(items: Sequence[T], n: Optional[int], *, seed: int = 0) -> list[T]:
    """A seeded random sample of ``n`` items in their original order; all of them when ``n`` is None or too big.

    Commands that take ``--limit N`` call this, so a limit larger than the
    corpus simply uses the whole corpus, as first-N slicing did.
    """
    if n is None or n >= len(items):
        return list(items)
    return [items[i] for i in sample_indices(len(items), n, seed=seed)]


def shuffled_sample_indices(total: int, n: int, *, seed: int = 0) -> list[int]:
    """The indices of :func:`sample_indices` (the same documents) in a seeded random order instead of corpus order."""
    if n < 0 or n > total:
        raise ValueError(f"cannot sample {n} of {total} documents; give a number from 0 to {total}")
    # random.sample returns its picks in selection order, a uniformly random order: sorted, they are sample_indices.
    return random.Random(seed).sample(range(total), n)


def excluded_texts(exclude: Optional[str]) -> set[str]:
    """The texts (whitespace collapsed) of the documents in ``exclude``: a corpus file or a bundled ``distil:`` pool."""
    if not exclude:
        return set()
    return {normalise_text(doc.text) for doc in load_examples(exclude)}


def sample_corpus(
    source: Path,
    output: Path,
    n: int,
    *,
    seed: int = 0,
    rest: Optional[Path] = None,
    lang: str = "en",
    exclude: Optional[str] = None,
) -> tuple[int, int, int]:
    """Write a seeded random sample of ``n`` documents to ``output``, shuffled, and the others, shuffled, to ``rest``.

    Returns (sampled, rest, excluded) counts. Documents whose text is in
    ``exclude`` (e.g. the seed pool a teacher retrieves its examples from,
    ``distil:pool_wnut17.jsonl``) are left out of both files first, so a
    project's train, dev and test samples stay disjoint from that pool. The sample holds the documents
    ``evaluate --limit N --seed S`` scores (:func:`sample_indices`), in a
    seeded random order (:func:`shuffled_sample_indices`); the rest is
    shuffled with the same seed. Neither file keeps corpus order, so a
    corpus sorted by label yields files in which any head is a fair sample.
    The same seed on the same corpus always gives the same files.
    """
    docs = list(read_docs(source, spacy.blank(lang)))
    held_out = excluded_texts(exclude)
    kept = [doc for doc in docs if normalise_text(doc.text) not in held_out]
    excluded, docs = len(docs) - len(kept), kept
    if n > len(docs):
        raise ValueError(f"{source} has {len(docs)} documents, cannot sample {n}; give --n {len(docs)} or less")
    order = shuffled_sample_indices(len(docs), n, seed=seed)
    write_docs([docs[i] for i in order], output)
    if rest is not None:
        chosen = set(order)
        others = [d for i, d in enumerate(docs) if i not in chosen]
        random.Random(seed).shuffle(others)
        write_docs(others, rest)
    return n, len(docs) - n, excluded
