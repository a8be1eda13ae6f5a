"""Ask one question until it has a valid answer: cache, send, validate, re-ask.

Both models (HTTP and in-process) share this loop so that caching, re-asking
with the validation error and failure accounting behave the same whatever
answers the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional

from .cache import ResponseCache, cache_key
from .protocol import AnswerError, Completion, LLMRequest, LLMResponse, TransportError
from .usage import Usage


def resolve(
    request: LLMRequest,
    send: Callable[[LLMRequest], Completion],
    *,
    identity: dict[str, Any],
    usage: Usage,
    cache: Optional[ResponseCache] = None,
    max_reasks: int = 1,
    wants_tokens: bool = False,
) -> LLMResponse:
    """Answer ``request``: from the cache, else from ``send``, re-asking up to ``max_reasks`` times.

    Transport failures (``TransportError``, raised by ``send`` after its own
    retries) and answers still invalid after the re-asks come back as a failed
    :class:`LLMResponse` with the kind, reason and last raw answer; nothing is
    raised, so one bad document never stops a batch. With ``wants_tokens`` (a
    model that gives log-probabilities), a cached answer stored without them
    is asked again, so that its items get scores.
    """
    key = cache_key(identity, request.prompt, request.json_schema) if cache is not None else None
    if cache is not None and key is not None:
        entry = cache.get_entry(key)
        if entry is not None and (entry[1] is not None or not wants_tokens):
            hit, hit_tokens = entry
            try:
                value = request.parse(hit)
            except AnswerError:
                pass  # stored by an older validator that accepted it: ask again
            else:
                usage.add("cache_hits")
                return LLMResponse(request, value=value, raw=hit, attempts=0, cached=True, tokens=hit_tokens)
        usage.add("cache_misses")
    current = request
    raw: Optional[str] = None
    last: Optional[AnswerError] = None
    for attempt in range(max_reasks + 1):
        if attempt:
            usage.add("reasks")
        try:
            completion = send(current)
        except TransportError as err:
            usage.add_failure(err.kind)
            return LLMResponse(
                request, raw=raw, failure_kind=err.kind, failure_reason=str(err), attempts=attempt + 1
            )
        usage.add_completion(completion.prompt_tokens, completion.completion_tokens, completion.latency)
        raw = completion.text
        try:
            value = request.parse(raw)
        except AnswerError as err:
            last = err
            current = current.with_feedback(raw, str(err))
            continue
        if cache is not None and key is not None:
            cache.put(key, json.dumps(identity, sort_keys=True), raw, completion.tokens)
        return LLMResponse(request, value=value, raw=raw, attempts=attempt + 1, tokens=completion.tokens)
    assert last is not None
    usage.add_failure(last.kind)
    return LLMResponse(
        request, raw=raw, failure_kind=last.kind, failure_reason=str(last), attempts=max_reasks + 1
    )
