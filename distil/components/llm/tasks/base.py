"""What the three distil LLM tasks share: chunking, request building, failure recording, counters.

The tasks follow spacy-llm's sharding protocol: ``generate_prompts`` yields,
per doc, one :class:`LLMRequest` per chunk of the doc's text, and
``parse_responses`` gets the answers back per doc. Unlike spacy-llm's own
sharding, the "shards" handed through are the original Doc (repeated), never
copies, so a task only ever adds its own annotation to the Doc it was given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Tuple  # noqa: UP035 - spacy-llm inspects typing generics

import jinja2
from spacy.tokens import Doc

from ....annotations import Failure, record_failure
from ..protocol import Chunk, LLMRequest, LLMResponse
from ..splitting import CHARS_PER_TOKEN, split_doc

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

    def reset(self) -> None:
        """Zero every counter."""
        self.docs = self.chunks = self.failed_docs = 0
        self.failures = Counter()
        self.counts = Counter()


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

    # --- hooks for subclasses ---------------------------------------------------

    def _request(self, doc: Doc, chunk: Chunk) -> Optional[LLMRequest]:
        """The request for one chunk, or ``None`` when there is nothing to ask."""
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
            self._overhead_chars = len(self._empty_prompt())
        budget_tokens = context_length - self._answer_tokens - self._overhead_chars // CHARS_PER_TOKEN - 16
        return max(MIN_CHUNK_CHARS, budget_tokens * CHARS_PER_TOKEN)

    def generate_prompts(
        self, docs: Iterable[Doc], context_length: Optional[int] = None
    ) -> Iterable[Tuple[Iterable[LLMRequest], Iterable[Doc]]]:  # noqa: UP006
        """Per doc: the requests for its chunks, and the doc itself once per request (at least once)."""
        max_chars = self.chunk_chars(context_length)
        for doc in docs:
            chunks = split_doc(doc, max_chars) if max_chars else ([Chunk(0, len(doc.text), doc.text)] if doc.text.strip() else [])
            requests = [r for r in (self._request(doc, chunk) for chunk in chunks) if r is not None]
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
