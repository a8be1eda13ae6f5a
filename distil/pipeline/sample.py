"""Reproducible random samples of a corpus: the one sampling rule every subset in distil uses.

``evaluate --limit``, ``compare --limit`` and ``distil sample`` (train/dev
splits, the texts a teacher annotates, a test sample) all draw their subset
with :func:`sample_indices`: N documents chosen uniformly at random with a
seeded generator, kept in corpus order. Taking the first N instead would be
biased whenever a file is sorted (BANKING77's test file is sorted by label:
its first 300 documents hold 8 of the 77 intents).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, TypeVar

import spacy

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


def sample_corpus(
    source: Path, output: Path, n: int, *, seed: int = 0, rest: Optional[Path] = None, lang: str = "en"
) -> tuple[int, int]:
    """Write a seeded random sample of ``n`` documents to ``output`` and the others, in order, to ``rest``.

    Returns (sampled, rest) counts. Both files keep the corpus order (the
    sample is drawn with :func:`sample_indices`, then written in the order the
    documents had), so the same seed on the same corpus always gives the same
    files, and ``--limit N --seed S`` of ``evaluate`` on the corpus picks the
    same documents as ``distil sample --n N --seed S``.
    """
    docs = list(read_docs(source, spacy.blank(lang)))
    if n > len(docs):
        raise ValueError(f"{source} has {len(docs)} documents, cannot sample {n}; give --n {len(docs)} or less")
    chosen = set(sample_indices(len(docs), n, seed=seed))
    write_docs([d for i, d in enumerate(docs) if i in chosen], output)
    if rest is not None:
        write_docs([d for i, d in enumerate(docs) if i not in chosen], rest)
    return n, len(docs) - n
