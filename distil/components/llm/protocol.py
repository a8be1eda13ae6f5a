"""What a distil task hands to a distil model, and what it gets back.

spacy-llm moves opaque prompt and response objects between a task and a model.
distil's prompts are :class:`LLMRequest` objects: the prompt text plus the JSON
Schema the answer must match and the function that validates it. That lets the
model (which owns concurrency, retries and the cache) re-ask a question whose
answer failed validation, feeding the error back, without the task having to
call the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Optional

SYSTEM_MESSAGE = (
    "You extract structured information from text. Reply with one JSON value only, matching the requested schema."
)


class AnswerError(ValueError):
    """An answer that is not valid JSON or does not match the task's output schema."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class TransportError(RuntimeError):
    """A request that could not be answered (timeout, server error) after the model's retries."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Chunk:
    """The part of a document's text a request is about, in character offsets of the doc."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class LLMRequest:
    """One question to a model: prompt, answer schema, validator, and the chunk it concerns.

    ``feedback`` holds earlier (answer, error) pairs when the question is re-asked.
    """

    task: str
    prompt: str
    json_schema: dict[str, Any]
    parse: Callable[[str], Any] = field(compare=False, repr=False)
    chunk: Chunk
    max_tokens: int = 256
    context: Any = field(default=None, compare=False, repr=False)
    feedback: tuple[tuple[str, str], ...] = ()

    def with_feedback(self, raw: str, error: str) -> LLMRequest:
        """The same question again, told what was wrong with the previous answer."""
        return replace(self, feedback=(*self.feedback, (raw, error)))

    def completion_text(self) -> str:
        """The prompt for a completion API: the task prompt, then earlier answers and their errors."""
        text = self.prompt
        for raw, error in self.feedback:
            text += f" {raw.strip()}\nThat answer is invalid: {error}\nCorrected JSON:"
        return text

    def chat_messages(self) -> list[dict[str, str]]:
        """The prompt for a chat API: system, user, then alternating answers and corrections."""
        messages = [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": self.prompt}]
        for raw, error in self.feedback:
            messages.append({"role": "assistant", "content": raw})
            messages.append(
                {"role": "user", "content": f"That answer is invalid: {error}\nReply with corrected JSON only."}
            )
        return messages


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log-probability, and the most likely alternatives there.

    ``text`` pieces of a completion concatenate to the completion's text, so a
    character offset in the answer maps to the tokens that wrote it. ``top``
    holds (text, logprob) of the most likely tokens at that position (the
    chosen one included), when the model gives them.
    """

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


TokenLogprobs = tuple[TokenLogprob, ...]


@dataclass(frozen=True)
class Completion:
    """A raw answer from a model with its token counts, latency in seconds and, if known, token log-probs."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    tokens: Optional[TokenLogprobs] = None


@dataclass(frozen=True)
class LLMResponse:
    """The outcome of one request: a validated value, or a failure (kind, reason) with the raw answer."""

    request: LLMRequest
    value: Any = None
    raw: Optional[str] = None
    failure_kind: Optional[str] = None
    failure_reason: Optional[str] = None
    attempts: int = 0
    cached: bool = False
    tokens: Optional[TokenLogprobs] = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the answer validated."""
        return self.failure_kind is None
