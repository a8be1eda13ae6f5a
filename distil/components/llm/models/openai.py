"""``distil.OpenAI.v1``: any OpenAI-compatible ``/v1/chat/completions`` server.

A batch of prompts goes out concurrently (a bounded thread pool sharing one
HTTP connection pool), each request retried with exponential backoff and
jitter on 429, 5xx, timeouts, dropped connections and unreadable bodies,
honouring ``Retry-After``. Requests go to ``base_url`` only: no redirects are
followed and nothing is sent to any other host (no start-up check against the
public OpenAI API). As httpx does by default, the client honours the
environment (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, ``SSL_CERT_FILE``),
so a server behind a corporate proxy or a private CA works; ``trust_env =
false`` ignores it. The API key is read from the environment variable named in
the config; it is sent in the ``Authorization`` header and appears nowhere
else (not in errors, logs, caches or saved configs).

With ``logprobs = true`` the request asks for the answer tokens'
log-probabilities (``logprobs``/``top_logprobs`` of the chat API, returned by
OpenAI, vLLM and llama.cpp's server), from which the tasks score entities,
categories and relations exactly as for the in-process model.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, Iterable, Literal, Optional  # noqa: UP035 - spacy-llm inspects typing generics

import httpx
from spacy_llm.registry import registry

from ..ask import resolve
from ..cache import ResponseCache, UsesResponseCache
from ..protocol import Completion, LLMRequest, LLMResponse, TokenLogprob, TokenLogprobs, TransportError
from ..usage import TracksUsage, Usage

ResponseFormat = Literal["json_schema", "json_object", "none"]
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# A server's Retry-After is obeyed as given (not capped by backoff_max) up to this many seconds.
RETRY_AFTER_MAX = 120.0


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def chat_logprobs(logprobs: Any) -> Optional[TokenLogprobs]:
    """Tokens from a chat completion's ``logprobs.content`` (``token``, ``logprob``, ``top_logprobs``).

    Anything else (no logprobs, another shape) gives ``None``: the answer is
    then used without scores rather than rejected.
    """
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    try:
        return tuple(
            TokenLogprob(
                str(item["token"]),
                float(item["logprob"]),
                tuple((str(alt["token"]), float(alt["logprob"])) for alt in item.get("top_logprobs") or ()),
            )
            for item in content
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class OpenAISettings:
    """The settings of one ``distil.OpenAI.v1`` model: :func:`make_openai_model`'s arguments less the cache.

    The registered function keeps its typed arguments (spaCy validates and
    fills a config from them) and passes them through in one object, checked
    here once.
    """

    model: str
    base_url: str = "http://127.0.0.1:8080/v1"
    api_key_env: Optional[str] = None
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 0.5
    backoff_max: float = 30.0
    max_reasks: int = 1
    temperature: float = 0.0
    top_p: Optional[float] = None
    seed: Optional[int] = None
    max_tokens: Optional[int] = None
    response_format: ResponseFormat = "json_schema"
    context_length: int = 8192
    logprobs: bool = False
    top_logprobs: int = 0
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    trust_env: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"distil.OpenAI.v1: top_logprobs must be between 0 and 20, got {self.top_logprobs}")
        if self.top_logprobs and not self.logprobs:
            raise ValueError(f"distil.OpenAI.v1: top_logprobs = {self.top_logprobs} needs logprobs = true")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"distil.OpenAI.v1: base_url must start with http:// or https://, got {self.base_url!r}")
        if self.concurrency < 1:
            raise ValueError(f"distil.OpenAI.v1: concurrency must be at least 1, got {self.concurrency}")


class OpenAIModel(TracksUsage, UsesResponseCache):
    """The model callable spacy-llm's ``llm`` component runs; see the module docstring."""

    def __init__(self, settings: OpenAISettings, cache: Optional[ResponseCache] = None) -> None:
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._api_key: Optional[str] = None
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise ValueError(
                    f"distil.OpenAI.v1: the environment variable {settings.api_key_env} (api_key_env) is not set. "
                    f"Export the API key in it, or set api_key_env = null for a server without authentication."
                )
            self._api_key = key
        self.cache = cache
        self.usage = Usage(settings.price_per_1k_prompt, settings.price_per_1k_completion)
        self._client: Optional[httpx.Client] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAIModel(model={self.settings.model!r}, base_url={self.base_url!r}, "
            f"concurrency={self.settings.concurrency})"
        )

    @property
    def context_length(self) -> int:
        """The model's context length in tokens, used by tasks to split long documents."""
        return self.settings.context_length

    @property
    def identity(self) -> dict[str, Any]:
        """What determines an answer besides the prompt: the cache key's model part."""
        settings = self.settings
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": settings.model,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "max_tokens": settings.max_tokens,
            "response_format": settings.response_format,
        }

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Content-Type": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                concurrency = self.settings.concurrency
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=headers,
                    timeout=httpx.Timeout(self.settings.timeout),
                    limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
                    follow_redirects=False,
                    # Proxies and CA bundles from the environment, as httpx does by default, unless turned off.
                    trust_env=self.settings.trust_env,
                )
            return self._client

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="distil-llm")
            return self._pool

    def _body(self, request: LLMRequest) -> dict[str, Any]:
        settings = self.settings
        body: dict[str, Any] = {
            "model": settings.model,
            "messages": request.chat_messages(),
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens or request.max_tokens,
        }
        if settings.top_p is not None:
            body["top_p"] = settings.top_p
        if settings.seed is not None:
            body["seed"] = settings.seed
        if settings.logprobs:
            body["logprobs"] = True
            if settings.top_logprobs:
                body["top_logprobs"] = settings.top_logprobs
        if settings.response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": f"distil_{request.task}", "schema": request.json_schema, "strict": False},
            }
        elif settings.response_format == "json_object":
            # llama.cpp's server (and others) turn the schema of a json_object format into a grammar.
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return body

    def _wait(self, attempt: int, retry_after: Optional[float]) -> None:
        self.usage.add("retries")
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_MAX)
        else:
            delay = min(self.settings.backoff_max, self.settings.backoff * (2**attempt)) * random.uniform(0.5, 1.5)
        time.sleep(delay)

    def _client_error(self, status: int, text: str) -> tuple[str, str]:
        """The failure kind and reason of a 4xx answer that retrying cannot fix.

        401/403 (``auth_error``) and 404 (``model_not_found``) say the
        configuration is wrong, not the document, and they would repeat on
        every request: they get kinds of their own
        (:data:`distil.annotations.SYSTEMIC_FAILURE_KINDS`) and a reason that
        says what to fix. The reason names the key's environment variable,
        never the key, and is redacted in case the server echoes it.
        """
        where = f"HTTP {status} from {self.base_url}"
        if status in (401, 403):
            variable = self.settings.api_key_env
            if variable:
                hint = f"the API key in the environment variable {variable} (api_key_env) may be wrong or lack access"
            else:
                hint = "no API key was sent: set api_key_env to the environment variable that holds one"
            kind, reason = "auth_error", f"{where} for model {self.settings.model!r}: {hint}"
        elif status == 404:
            kind, reason = "model_not_found", (
                f"{where}: the model name {self.settings.model!r} or the base_url {self.base_url!r} may be wrong"
            )
        else:
            return "http_error", self._redact(f"{where}: {text}")
        return kind, self._redact(f"{reason} (the server said: {text})")

    def send(self, request: LLMRequest) -> Completion:
        """POST one request, retrying transient failures; raises :class:`TransportError` when they persist."""
        body = self._body(request)
        client = self._http()
        kind, reason = "unknown", ""
        retry_after: Optional[float] = None
        max_retries = self.settings.max_retries
        for attempt in range(max_retries + 1):
            if attempt:
                self._wait(attempt - 1, retry_after)
            retry_after = None
            started = time.perf_counter()
            try:
                response = client.post("/chat/completions", json=body)
                payload = response.content
            except httpx.TimeoutException:
                kind, reason = "timeout", f"no answer within {self.settings.timeout:g} s"
                continue
            except httpx.TransportError as err:
                kind, reason = "connection_error", f"{type(err).__name__}: {err}"
                continue
            latency = time.perf_counter() - started
            status = response.status_code
            if status in RETRY_STATUS or status >= 500:
                kind = "rate_limited" if status == 429 else "server_error"
                reason = f"HTTP {status}: {payload[:200].decode('utf-8', 'replace')}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                continue
            if status >= 400:
                text = payload[:300].decode("utf-8", "replace")
                raise TransportError(*self._client_error(status, text))
            try:
                data = json.loads(payload)
                content = data["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise TypeError("message content is not a string")
            except (ValueError, KeyError, IndexError, TypeError) as err:
                kind, reason = "bad_response", f"unreadable response body ({err})"
                continue
            tokens = data.get("usage") or {}
            return Completion(
                content,
                int(tokens.get("prompt_tokens") or 0),
                int(tokens.get("completion_tokens") or 0),
                latency,
                chat_logprobs(data["choices"][0].get("logprobs")) if self.settings.logprobs else None,
            )
        raise TransportError(kind, self._redact(f"{reason} (after {max_retries + 1} attempts)"))

    def _resolve(self, request: LLMRequest) -> LLMResponse:
        return resolve(
            request, self.send, identity=self.identity, usage=self.usage, cache=self.cache,
            max_reasks=self.settings.max_reasks,
            wants_tokens=self.settings.logprobs,
        )

    def __call__(self, prompts: Iterable[Iterable[LLMRequest]]) -> Iterable[Iterable[LLMResponse]]:
        """Answer a batch: every request of every doc concurrently, results grouped per doc in order."""
        groups = [list(group) for group in prompts]
        flat = [request for group in groups for request in group]
        if len(flat) <= 1 or self.settings.concurrency == 1:
            answers = [self._resolve(r) for r in flat]
        else:
            answers = list(self._executor().map(self._resolve, flat))
        out: list[list[LLMResponse]] = []
        position = 0
        for group in groups:
            out.append(answers[position : position + len(group)])
            position += len(group)
        return out

    def close(self) -> None:
        """Close the connection pool and the worker threads."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None


@registry.llm_models("distil.OpenAI.v1")
def make_openai_model(
    model: str,
    base_url: str = "http://127.0.0.1:8080/v1",
    api_key_env: Optional[str] = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_retries: int = 4,
    backoff: float = 0.5,
    backoff_max: float = 30.0,
    max_reasks: int = 1,
    temperature: float = 0.0,
    top_p: Optional[float] = None,
    seed: Optional[int] = None,
    max_tokens: Optional[int] = None,
    response_format: ResponseFormat = "json_schema",
    context_length: int = 8192,
    logprobs: bool = False,
    top_logprobs: int = 0,
    price_per_1k_prompt: float = 0.0,
    price_per_1k_completion: float = 0.0,
    trust_env: bool = True,
    cache: Optional[ResponseCache] = None,
) -> OpenAIModel:
    """An OpenAI-compatible chat-completions server at ``base_url`` (OpenAI, vLLM, Ollama, llama.cpp, TGI).

    ``api_key_env`` names the environment variable holding the key (unset for
    local servers). ``concurrency`` requests are in flight at once; transient
    failures are retried ``max_retries`` times; an invalid answer is re-asked
    ``max_reasks`` times with the validation error. ``response_format`` is
    ``json_schema`` (OpenAI, vLLM), ``json_object`` (llama.cpp server: schema
    inside) or ``none``. ``logprobs = true`` asks for token log-probabilities,
    which become entity, category and relation scores (``top_logprobs``
    alternatives per token score the categories not chosen). ``trust_env =
    false`` ignores proxy and CA-bundle variables of the environment.
    """
    # Every argument but the cache is a setting of the same name (a test pins the two lists together).
    arguments = dict(locals())
    return OpenAIModel(OpenAISettings(**{f.name: arguments[f.name] for f in fields(OpenAISettings)}), cache=cache)
