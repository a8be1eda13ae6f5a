"""``distil.RetrievedExamples.v1``: few-shot examples chosen per document by embedding similarity.

Static examples show every document the same few texts. Retrieval picks, for
each document (each chunk of a long one), the ``k`` pool documents most similar
to it by MiniLM sentence embeddings (:mod:`.embedder`), which published
results (KATE, GPT-NER) found to help in-context learning a lot. The pool is a
JSONL records file, a ``.spacy`` DocBin or a ``distil annotate`` output folder
(its ``records.jsonl``); pool documents with recorded failures are skipped.

Selection, in order: pool documents with the same text as the query are left
out (``exclude_same_text``: a document never sees its own answer); the rest are
ranked by cosine similarity, or by maximal marginal relevance when
``mmr_lambda`` is set (similarity to the query minus ``1 - mmr_lambda`` times
the similarity to examples already chosen); an example is skipped when one of
its labels already has ``per_label`` examples (an example with no annotation
counts for the label ``"<none>"``), or when it would exceed the approximate
token budget ``max_tokens``; at most ``k`` are taken. In the prompt the most
similar example comes last, next to the document.

Pool embeddings are computed once and kept in ``$DISTIL_CACHE_DIR/embeddings/``
(default ``~/.cache/distil/embeddings/``) under a hash of the pool's texts and
the encoder's identity: a changed pool or encoder is a new file, never a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
from spacy.tokens import Doc
from spacy_llm.registry import registry

from .embedder import SentenceEmbedder, distil_cache_dir
from .examples import load_examples

NO_LABEL = "<none>"
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The text with whitespace collapsed and ends stripped: what "the same text" means for exclusion."""
    return _SPACE.sub(" ", text).strip()


def resolve_pool_path(pool: str) -> str:
    """The corpus file of a pool setting: the file itself, or ``records.jsonl`` in an annotation folder."""
    path = Path(pool).expanduser()
    if path.is_dir():
        records = path / "records.jsonl"
        if not records.is_file():
            raise ValueError(
                f"distil.RetrievedExamples.v1: pool folder {path} has no records.jsonl; give a .jsonl records "
                f"file, a .spacy DocBin or a `distil annotate` output folder"
            )
        return str(records)
    return pool


class RetrievedExamples:
    """A pool of example documents and the rule that picks some for a query; see the module docstring.

    Tasks call :meth:`select` with, per pool document, the labels and the
    approximate prompt cost of its example as the task renders it.
    """

    def __init__(
        self,
        pool: str,
        *,
        k: int = 4,
        max_tokens: Optional[int] = None,
        per_label: Optional[int] = None,
        mmr_lambda: Optional[float] = None,
        exclude_same_text: bool = True,
        model: Optional[str] = None,
        max_length: int = 256,
        n_threads: int = 1,
        cache_dir: Optional[str] = None,
    ) -> None:
        name = "distil.RetrievedExamples.v1"
        if k < 1:
            raise ValueError(f"{name}: k must be at least 1, got {k}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"{name}: max_tokens must be positive or null, got {max_tokens}")
        if per_label is not None and per_label < 1:
            raise ValueError(f"{name}: per_label must be at least 1 or null, got {per_label}")
        if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
            raise ValueError(f"{name}: mmr_lambda must be between 0 and 1 or null, got {mmr_lambda}")
        self.pool_path = resolve_pool_path(pool)
        docs = load_examples(self.pool_path)
        self.docs: list[Doc] = [doc for doc in docs if not doc._.failures]
        if not self.docs:
            raise ValueError(f"{name}: the pool {pool} holds no usable documents")
        self.k = k
        self.max_tokens = max_tokens
        self.per_label = per_label
        self.mmr_lambda = mmr_lambda
        self.exclude_same_text = exclude_same_text
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else distil_cache_dir() / "embeddings"
        self.embedder = SentenceEmbedder(model, max_length=max_length, n_threads=n_threads)
        self._texts = [normalise_text(doc.text) for doc in self.docs]
        self._matrix: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        return f"RetrievedExamples(pool={self.pool_path!r}, k={self.k}, docs={len(self.docs)})"

    @property
    def identity(self) -> dict[str, Any]:
        """The settings that decide which examples a query gets (for reports and fingerprints)."""
        return {
            "pool": self.cache_key(),
            "k": self.k,
            "max_tokens": self.max_tokens,
            "per_label": self.per_label,
            "mmr_lambda": self.mmr_lambda,
            "exclude_same_text": self.exclude_same_text,
        }

    def cache_key(self) -> str:
        """The hash of the pool's texts and the encoder's identity, naming the embeddings file."""
        digest = hashlib.sha256(json.dumps(self.embedder.identity, sort_keys=True).encode())
        for text in self._texts:
            digest.update(b"\x00" + text.encode("utf-8"))
        return digest.hexdigest()[:32]

    def cache_file(self) -> Path:
        """Where the pool embeddings are kept."""
        return self.cache_dir / f"{self.cache_key()}.npy"

    def pool_embeddings(self) -> np.ndarray:
        """The pool's embeddings: from the disk cache, else computed once and written there atomically."""
        if self._matrix is not None:
            return self._matrix
        file = self.cache_file()
        matrix: Optional[np.ndarray] = None
        if file.is_file():
            try:
                matrix = np.load(file, allow_pickle=False)
            except (OSError, ValueError):
                matrix = None  # torn or foreign file: recompute it
            if matrix is not None and matrix.shape[0] != len(self._texts):
                matrix = None
        if matrix is None:
            matrix = self.embedder.embed(self._texts)
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f"{file.stem}.{os.getpid()}.partial.npy")
            np.save(partial, matrix, allow_pickle=False)
            os.replace(partial, file)
        self._matrix = matrix
        return matrix

    def select(
        self,
        queries: Sequence[str],
        labels: Sequence[frozenset[str]],
        costs: Sequence[int],
        usable: Optional[Sequence[bool]] = None,
    ) -> list[list[int]]:
        """For each query text, the indices (into :attr:`docs`) of its examples, least similar first.

        ``labels`` and ``costs`` (approximate prompt tokens) describe each pool
        document's example as the calling task renders it; ``usable`` marks
        pool documents the task cannot show (e.g. no category).
        """
        return [indices for indices, _ in self.retrieve(queries, labels, costs, usable)]

    def retrieve(
        self,
        queries: Sequence[str],
        labels: Sequence[frozenset[str]],
        costs: Sequence[int],
        usable: Optional[Sequence[bool]] = None,
        shortlist: Optional[LabelShortlist] = None,
    ) -> list[tuple[list[int], Optional[list[str]]]]:
        """Per query: its examples (as :meth:`select`) and, with ``shortlist``, its candidate labels.

        The queries are embedded once for both.
        """
        if not queries:
            return []
        pool = self.pool_embeddings()
        normalised = [normalise_text(q) for q in queries]
        query_vectors = self.embedder.embed(normalised)
        similarities = query_vectors @ pool.T
        allowed = np.ones(len(self.docs), dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
        ranked: list[Optional[list[str]]] = [None] * len(queries)
        if shortlist is not None:
            voting = similarities
            if self.exclude_same_text:  # a document must not vote for its own labels
                voting = similarities.copy()
                for row, query in enumerate(normalised):
                    voting[row, [i for i, text in enumerate(self._texts) if text == query]] = -1.0
            ranked = shortlist.rank(self, query_vectors, voting, labels, allowed)
        return [
            (self._pick(query, row, allowed, labels, costs), candidates)
            for query, row, candidates in zip(normalised, similarities, ranked, strict=True)
        ]

    def _pick(
        self,
        query: str,
        similarity: np.ndarray,
        allowed: np.ndarray,
        labels: Sequence[frozenset[str]],
        costs: Sequence[int],
    ) -> list[int]:
        candidates = allowed.copy()
        if self.exclude_same_text:
            candidates &= np.array([text != query for text in self._texts], dtype=bool)
        chosen: list[int] = []
        used: Counter[str] = Counter()
        spent = 0
        pool = self._matrix if self._matrix is not None else self.pool_embeddings()
        # Greedy: score every remaining candidate, take the best that fits the quota and budget.
        redundancy = np.full(len(self.docs), -np.inf if self.mmr_lambda is None else -1.0, dtype=np.float32)
        while len(chosen) < self.k and candidates.any():
            if self.mmr_lambda is None or not chosen:
                score = similarity
            else:
                score = self.mmr_lambda * similarity - (1.0 - self.mmr_lambda) * redundancy
            order = np.argsort(-np.where(candidates, score, -np.inf), kind="stable")
            picked = None
            for index in order:
                index = int(index)
                if not candidates[index]:
                    break
                candidates[index] = False  # considered once: it fits now or never will
                tags = labels[index] or frozenset({NO_LABEL})
                if self.per_label is not None and any(used[tag] >= self.per_label for tag in tags):
                    continue
                if self.max_tokens is not None and spent + costs[index] > self.max_tokens:
                    continue
                picked = index
                break
            if picked is None:
                break
            chosen.append(picked)
            used.update(labels[picked] or frozenset({NO_LABEL}))
            spent += costs[picked]
            if self.mmr_lambda is not None:
                redundancy = np.maximum(redundancy, pool @ pool[picked])
        # Most similar last: closest to the document in the prompt.
        return sorted(chosen, key=lambda i: float(similarity[i]))


class LabelShortlist:
    """The ``size`` most likely labels of a document, for schemas with too many labels to offer them all.

    A label's score is the similarity of the document to the nearest pool
    document showing that label (a 1-nearest-neighbour vote per label; 0 for
    a label no pool document shows), plus
    ``description_weight`` times the similarity of the document to the label's
    own text (its name and description, embedded once with the same encoder),
    so labels the pool never shows can still be offered. The task then shows
    and allows only those labels for that document; the answer is still
    checked against the whole schema.
    """

    def __init__(self, label_texts: dict[str, str], size: int, description_weight: float = 0.5) -> None:
        if size < 1:
            raise ValueError(f"label shortlist: size must be at least 1, got {size}")
        self.names = list(label_texts)
        self.texts = [label_texts[name] for name in self.names]
        self.size = size
        self.description_weight = description_weight
        self._vectors: Optional[np.ndarray] = None

    def rank(
        self,
        selector: RetrievedExamples,
        query_vectors: np.ndarray,
        similarities: np.ndarray,
        labels: Sequence[frozenset[str]],
        allowed: np.ndarray,
    ) -> list[Optional[list[str]]]:
        """Per query, every label, best first: the task offers the first ``size`` it can use for the document."""
        if self._vectors is None:
            self._vectors = selector.embedder.embed([normalise_text(text) for text in self.texts])
        scores = self.description_weight * (query_vectors @ self._vectors.T)  # queries x labels
        # Nearest pool document per label: the max similarity over the pool documents showing it; 0 (no vote)
        # for a label no pool document shows, which then competes on its description alone.
        nearest = np.zeros((len(query_vectors), len(self.names)), dtype=np.float32)
        column = {name: j for j, name in enumerate(self.names)}
        for i, tags in enumerate(labels):
            if not allowed[i]:
                continue
            for tag in tags:
                j = column.get(tag)
                if j is not None:
                    nearest[:, j] = np.maximum(nearest[:, j], similarities[:, i])
        scores = scores + nearest
        # The whole ranking, not its head: a relation task first drops the types no pair of the document's
        # entities can take, then keeps ``size``.
        ranking = np.argsort(-scores, axis=1, kind="stable")
        return [[self.names[j] for j in row] for row in ranking]


def _make(
    pool: str,
    k: int = 4,
    max_tokens: Optional[int] = None,
    per_label: Optional[int] = None,
    mmr_lambda: Optional[float] = None,
    exclude_same_text: bool = True,
    model: Optional[str] = None,
    max_length: int = 256,
    n_threads: int = 1,
    cache_dir: Optional[str] = None,
) -> RetrievedExamples:
    """Few-shot examples retrieved per document from ``pool`` by MiniLM similarity; see :mod:`.retrieval`.

    ``pool``: JSONL records, a ``.spacy`` DocBin or a ``distil annotate``
    output folder. ``k`` examples at most, within ``max_tokens`` approximate
    prompt tokens, at most ``per_label`` per label, ranked by similarity or by
    MMR (``mmr_lambda``); a pool document with the query's own text is never
    shown (``exclude_same_text``). ``model``: a folder with ``model.onnx`` and
    ``tokenizer.json`` (default: the packaged MiniLM). Pool embeddings are
    cached in the folder ``cache_dir`` (default ``$DISTIL_CACHE_DIR/embeddings``,
    else ``~/.cache/distil/embeddings``).
    """
    return RetrievedExamples(
        pool,
        k=k,
        max_tokens=max_tokens,
        per_label=per_label,
        mmr_lambda=mmr_lambda,
        exclude_same_text=exclude_same_text,
        model=model,
        max_length=max_length,
        n_threads=n_threads,
        cache_dir=cache_dir,
    )


# spacy-llm's own few-shot readers live in spaCy's ``misc`` registry (spacy.FewShotReader.v1) and
# distil's LLM helpers in ``llm_misc`` (distil.ResponseCache.v1): the selector answers to both.
make_retrieved_examples = registry.misc("distil.RetrievedExamples.v1")(_make)
registry.llm_misc("distil.RetrievedExamples.v1")(_make)
