"""What the three distil LLM tasks share: chunking, request building, failure recording, counters.

The tasks follow spacy-llm's sharding protocol: ``generate_prompts`` yields,
per doc, one :class:`LLMRequest` per chunk of the doc's text, and
``parse_responses`` gets the answers back per doc. Unlike spacy-llm's own
sharding, the "shards" handed through are the original Doc (repeated), never
copies, so a task only ever adds its own annotation to the Doc it was given.

Few-shot examples are either static (a file, the same for every document) or
retrieved per chunk (:class:`~..retrieval.RetrievedExamples`): the base class
prepares every example once with the subclass's ``_example`` and hands each
request the examples chosen for its chunk, embedding a whole batch of chunks at
once. The examples are part of the prompt, so the response cache never serves
an answer given with other examples.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Tuple, Union  # noqa: UP035 - spacy-llm inspects typing generics

import jinja2
from pydantic import ValidationError
from spacy.tokens import Doc

from ....annotations import Failure, record_failure
from ....schemas import LabelSpec
from ..answers import validation_message
from ..examples import load_examples
from ..protocol import Chunk, LLMRequest, LLMResponse
from ..retrieval import LabelShortlist, RetrievedExamples
from ..splitting import CHARS_PER_TOKEN, split_doc

logger = logging.getLogger("distil.llm")

# What a task's ``examples`` setting takes: a file of static examples, or a retrieval selector.
ExamplesSetting = Union[str, RetrievedExamples, None]
PromptExample = dict[str, str]
# Characters a rendered example takes besides its text and answer ("Text: ", "JSON: ", newlines).
EXAMPLE_FRAME_CHARS = 16

MIN_CHUNK_CHARS = 200


@dataclass
class TaskStats:
    """Counters of one task: docs seen, chunks asked, failures by kind, task-specific counts."""

    docs: int = 0
    chunks: int = 0
    failed_docs: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return {
            "docs": self.docs,
            "chunks": self.chunks,
            "failed_docs": self.failed_docs,
            "failures": dict(self.failures),
            "counts": dict(self.counts),
        }

    def report(self) -> dict[str, Any]:
        """The figures a run report prints: docs, chunks, failed docs and the task's counters, flat.

        Failures by kind are left to the model's report, which counts the same
        failed answers (a task only fails on an answer its model gave up on).
        """
        return {"docs": self.docs, "chunks": self.chunks, "failed_docs": self.failed_docs, **dict(self.counts)}

    def reset(self) -> None:
        """Zero every counter."""
        self.docs = self.chunks = self.failed_docs = 0
        self.failures = Counter()
        self.counts = Counter()


def example_tokens(example: PromptExample) -> int:
    """The approximate prompt tokens of a rendered example (characters / ``CHARS_PER_TOKEN``).

    Tasks have no model tokenizer at hand when they choose examples; the same
    character ratio already sizes document chunks.
    """
    chars = sum(len(value) for value in example.values()) + EXAMPLE_FRAME_CHARS
    return max(1, -(-chars // CHARS_PER_TOKEN))


def label_text(label: LabelSpec) -> str:
    """What a label is compared with when ranking a shortlist: its name in words, description and examples."""
    words = label.name.replace("_", " ").replace("-", " ")
    return ". ".join(part for part in (words, label.description, *label.examples) if part)


class DistilLLMTask:
    """Base of the distil tasks; subclasses build requests for a chunk and apply validated answers."""

    distil_task: str = ""

    def __init__(
        self,
        *,
        template: jinja2.Template,
        max_chunk_chars: Optional[int],
        answer_tokens: int,
        component_name: Optional[str],
    ) -> None:
        self._template = template
        self._max_chunk_chars = max_chunk_chars
        self._answer_tokens = answer_tokens
        self.component_name = component_name or self.distil_task
        self.stats = TaskStats()
        self._overhead_chars: Optional[int] = None
        self._examples: list[PromptExample] = []
        self._selector: Optional[RetrievedExamples] = None
        self._shortlist: Optional[LabelShortlist] = None
        self._pool: list[Optional[PromptExample]] = []
        self._pool_labels: list[frozenset[str]] = []
        self._pool_costs: list[int] = []

    def _setup_examples(self, examples: ExamplesSetting) -> None:
        """Prepare static examples, or the pool of a retrieval selector, with the subclass's ``_example``."""
        if isinstance(examples, RetrievedExamples):
            self._selector = examples
            what = f"few-shot pool {examples.pool_path}"
            self._pool = [self._checked_example(doc, what) for doc in examples.docs]
            left_out = sum(ex is None for ex in self._pool)
            if left_out:
                logger.warning(
                    "%s: %d of %d documents hold more than the %s task's answer schema can show (too many "
                    "mentions of one label or relations, or a mention too long): they are never retrieved",
                    what, left_out, len(self._pool), self.distil_task,
                )
            self._pool_labels = [self._example_labels(doc) for doc in examples.docs]
            self._pool_costs = [
                0 if ex is None else example_tokens(ex) for ex in self._pool
            ]
            return
        if examples is not None and not isinstance(examples, str):
            raise ValueError(
                f"{self.distil_task} task: examples must be a file path or a distil.RetrievedExamples.v1 block, "
                f"got {type(examples).__name__}"
            )
        what = f"few-shot examples {examples}"
        prepared = [self._checked_example(doc, what, i) for i, doc in enumerate(load_examples(examples), 1)]
        self._examples = [ex for ex in prepared if ex is not None]

    def _checked_example(self, doc: Doc, what: str, number: Optional[int] = None) -> Optional[PromptExample]:
        """``_example``, for a document whose annotation the answer schema cannot hold: None in a pool, else an error.

        A pool (``number`` None) is a corpus the user did not write for this
        prompt: such a document is left out (and counted). A static example
        (the ``number``-th of its file) was written for the prompt: it is the
        user's to fix.
        """
        try:
            return self._example(doc, what)
        except ValidationError as err:
            if number is None:
                return None
            raise ValueError(
                f"{what}: example {number} cannot be shown as a {self.distil_task} answer "
                f"({validation_message(err)}); shorten the example or raise the task's limit "
                "(max_per_label, max_mention_chars)"
            ) from None

    def _examples_reserve_chars(self) -> int:
        """Characters to keep free in a prompt for retrieved examples (0 with static ones)."""
        if self._selector is None:
            return 0
        if self._selector.max_tokens is not None:
            return self._selector.max_tokens * CHARS_PER_TOKEN
        largest = sorted(self._pool_costs, reverse=True)[: self._selector.k]
        return sum(largest) * CHARS_PER_TOKEN

    def _examples_for(self, texts: list[str]) -> list[tuple[list[PromptExample], Optional[list[str]]]]:
        """Per chunk text: the examples to show (static, or retrieved for it) and its label shortlist, if any."""
        if self._selector is None:
            return [(self._examples, None)] * len(texts)
        usable = [ex is not None for ex in self._pool]
        found = self._selector.retrieve(texts, self._pool_labels, self._pool_costs, usable, self._shortlist)
        return [
            ([self._pool[i] for i in indices if self._pool[i] is not None], candidates)  # type: ignore[misc]
            for indices, candidates in found
        ]

    def _setup_shortlist(self, size: Optional[int], label_texts: dict[str, str]) -> None:
        """Offer each document only its ``size`` likeliest labels (:class:`LabelShortlist`); needs retrieval."""
        if size is None or size >= len(label_texts):
            return
        if self._selector is None:
            raise ValueError(
                f"{self.distil_task} task: shortlist = {size} ranks labels from retrieved examples; set "
                "examples to a distil.RetrievedExamples.v1 block, or remove shortlist"
            )
        self._shortlist = LabelShortlist(label_texts, size)

    def _offered(
        self, ranking: Optional[list[str]], possible: Optional[set[str]] = None
    ) -> Optional[tuple[str, ...]]:
        """The labels a chunk's prompt offers, in schema order (as prompts list them), or None for all of them.

        ``possible`` narrows them to the labels the chunk can take at all (a
        relation task: the types its entities allow); ``ranking`` is the
        chunk's label shortlist ranking, best first, of which the first
        ``shortlist`` possible labels are kept.
        """
        names = self.labels if possible is None else tuple(name for name in self.labels if name in possible)
        if ranking and self._shortlist is not None:
            keep = set([name for name in ranking if possible is None or name in possible][: self._shortlist.size])
            names = tuple(name for name in names if name in keep)
        return None if names == self.labels else names

    # --- distil hooks (distil.protocols.ReportsUsage) ------------------------------

    def distil_usage(self) -> dict[str, Any]:
        """Documents, chunks, failed documents and the task's counters (``mentions``, ``ungrounded``...) so far."""
        return self.stats.report()

    def distil_reset_usage(self) -> None:
        """Zero this task's counters."""
        self.stats.reset()

    def distil_fingerprint(self) -> dict[str, Any]:
        """The prompt template's file and text hash, and a hash of the few-shot examples (static or the pool).

        The config names a template and an example file; their contents can
        change under the same names (an edited template, a regenerated pool),
        and either changes the answers (distil.protocols.Fingerprinted).
        """
        filename = self._template.filename or ""
        source = Path(filename).read_bytes() if filename and Path(filename).is_file() else filename.encode()
        examples = json.dumps([self._examples, self._pool], sort_keys=True, default=str).encode("utf-8")
        return {
            "template": Path(filename).name,
            "template_sha256": hashlib.sha256(source).hexdigest()[:16],
            "examples_sha256": hashlib.sha256(examples).hexdigest()[:16],
        }

    # --- hooks for subclasses ---------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        """The schema's labels, in schema order (spacy-llm's task protocol)."""
        raise NotImplementedError

    def _example(self, doc: Doc, what: str) -> Optional[PromptExample]:
        """A few-shot example as the template shows it (``text``, ``answer``...), or ``None`` if unusable.

        Raises ``ValueError`` naming ``what`` (the file) for a label outside the schema.
        """
        raise NotImplementedError

    def _example_labels(self, doc: Doc) -> frozenset[str]:
        """The labels an example document shows, for per-label quotas of retrieval."""
        raise NotImplementedError

    def _wants(self, doc: Doc, chunk: Chunk) -> bool:
        """Whether a chunk gets a request at all (checked before examples are retrieved for it)."""
        return True

    def _request(
        self, doc: Doc, chunk: Chunk, examples: list[PromptExample], shortlist: Optional[list[str]] = None
    ) -> Optional[LLMRequest]:
        """The request for one chunk with its few-shot ``examples``, or ``None`` when there is nothing to ask.

        ``shortlist``: the labels to offer for this chunk (tasks with a label shortlist), else all.
        """
        raise NotImplementedError

    def _apply(self, doc: Doc, answers: list[LLMResponse], complete: bool) -> None:
        """Write the validated answers of one doc (``complete``: no chunk failed)."""
        raise NotImplementedError

    def _empty_prompt(self) -> str:
        """The prompt for an empty text, to measure the fixed part of the prompt."""
        raise NotImplementedError

    # --- spacy-llm protocol -----------------------------------------------------

    def chunk_chars(self, context_length: Optional[int]) -> Optional[int]:
        """How many characters of text fit one prompt for a model with ``context_length`` tokens."""
        if self._max_chunk_chars:
            return self._max_chunk_chars
        if not context_length:
            return None
        if self._overhead_chars is None:
            self._overhead_chars = len(self._empty_prompt()) + self._examples_reserve_chars()
        budget_tokens = context_length - self._answer_tokens - self._overhead_chars // CHARS_PER_TOKEN - 16
        return max(MIN_CHUNK_CHARS, budget_tokens * CHARS_PER_TOKEN)

    def generate_prompts(
        self, docs: Iterable[Doc], context_length: Optional[int] = None
    ) -> Iterable[Tuple[Iterable[LLMRequest], Iterable[Doc]]]:  # noqa: UP006
        """Per doc: the requests for its chunks, and the doc itself once per request (at least once)."""
        max_chars = self.chunk_chars(context_length)
        # The whole batch is chunked first so that retrieval embeds every chunk text in one call.
        batch: list[tuple[Doc, list[Chunk]]] = []
        for doc in docs:
            chunks = split_doc(doc, max_chars) if max_chars else ([Chunk(0, len(doc.text), doc.text)] if doc.text.strip() else [])
            batch.append((doc, [chunk for chunk in chunks if self._wants(doc, chunk)]))
        chosen = iter(self._examples_for([chunk.text for _, chunks in batch for chunk in chunks]))
        for doc, chunks in batch:
            requests = [r for r in (self._request(doc, chunk, *next(chosen)) for chunk in chunks) if r is not None]
            yield requests, [doc] * max(1, len(requests))

    def parse_responses(
        self, shards: Iterable[Iterable[Doc]], responses: Iterable[Iterable[LLMResponse]]
    ) -> Iterable[Doc]:
        """Record failures and write the validated answers of each doc; yields every doc."""
        for doc_shards, doc_responses in zip(shards, responses, strict=True):
            doc = next(iter(doc_shards))
            answers = list(doc_responses)
            self.stats.docs += 1
            self.stats.chunks += len(answers)
            failed = [a for a in answers if not a.ok]
            for answer in failed:
                kind = answer.failure_kind or "unknown"
                self.stats.failures[kind] += 1
                chunk = answer.request.chunk
                reason = answer.failure_reason or ""
                if len(answers) > 1:
                    reason = f"chars {chunk.start}-{chunk.end}: {reason}"
                record_failure(doc, Failure(self.component_name, self.distil_task, kind, reason, answer.raw))
            if failed:
                self.stats.failed_docs += 1
            ok = [a for a in answers if a.ok]
            if ok or not answers:
                self._apply(doc, ok, complete=not failed)
            yield doc
