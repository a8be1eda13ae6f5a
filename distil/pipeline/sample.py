"""Reproducible random samples of a corpus (train/dev splits, the texts a teacher annotates)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Optional

import spacy

from .io.corpus import read_docs, write_docs


def sample_corpus(
    source: Path, output: Path, n: int, *, seed: int = 0, rest: Optional[Path] = None, lang: str = "en"
) -> tuple[int, int]:
    """Write a seeded random sample of ``n`` documents to ``output`` and the others, in order, to ``rest``.

    Returns (sampled, rest) counts. The sample keeps the corpus order, so the
    same seed on the same corpus always gives the same files.
    """
    docs = list(read_docs(source, spacy.blank(lang)))
    if n > len(docs):
        raise ValueError(f"{source} has {len(docs)} documents, cannot sample {n}")
    chosen = set(random.Random(seed).sample(range(len(docs)), n))
    write_docs([d for i, d in enumerate(docs) if i in chosen], output)
    if rest is not None:
        write_docs([d for i, d in enumerate(docs) if i not in chosen], rest)
    return n, len(docs) - n
