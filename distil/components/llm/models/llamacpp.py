"""``distil.LlamaCpp.v1``: a GGUF model in process through llama-cpp-python.

Answers are decoded under a grammar compiled from the request's JSON Schema,
so they are JSON of the right shape by construction (bounded lists and
strings make them terminate). Prompts go through the completion API: the
default Gemma 3 270M is a base model with no chat template. Every task prompt
starts with the same instructions and few-shot examples and ends with the
document, and llama.cpp keeps the evaluated tokens of the previous prompt, so
only the document part is evaluated for each new doc (the fixed prefix stays
in the KV cache). One instance serves requests one at a time.

Greedy completions (the default: grammar, lazy grammar, temperature 0) carry
their tokens' log-probabilities, computed from the logits in the decode loop,
which the tasks turn into entity, category and relation scores.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Optional  # noqa: UP035 - spacy-llm inspects typing generics

from spacy_llm.registry import registry

from ..ask import resolve
from ..cache import ResponseCache, UsesResponseCache
from ..protocol import Completion, LLMRequest, LLMResponse, TokenLogprob, TokenLogprobs, TransportError
from ..usage import TracksUsage, Usage
from .gguf import default_model_path
from .lazy_grammar import greedy_decode
from .runtime import ensure_runtime, install_hint

logger = logging.getLogger("distil.llamacpp")
# Compiled answer grammars kept per model, least recently used out (one per distinct JSON Schema).
GRAMMARS_KEPT = 128

# ggml's levels (NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5). Its warnings are notices about
# settings (such as the sliding-window KV cache), not problems of the run: INFO, shown when asked for.
_GGML_LEVELS = {4: logging.ERROR, 3: logging.INFO, 2: logging.DEBUG, 1: logging.DEBUG}
# llama.cpp's C log callback, kept referenced so ctypes does not free it while llama.cpp holds it.
_log_callback: Any = None


def _route_llama_logs() -> None:
    """Send llama.cpp's own log lines to the ``distil.llamacpp`` logger (errors at ERROR, warnings at INFO).

    Even with ``verbose=False`` llama.cpp prints notices such as the sliding-window
    KV-cache one on stderr each time a context is made, which clutters every run's
    output; here they go through logging, where an application chooses what to see.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def forward(level: int, text: bytes, user_data: Any) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            logger.log(_GGML_LEVELS.get(level, logging.DEBUG), message)

    _log_callback = forward
    llama_cpp.llama_log_set(forward, None)


def _completion_logprobs(logprobs: Optional[dict[str, Any]]) -> Optional[TokenLogprobs]:
    """Tokens from llama-cpp-python's completion ``logprobs`` (``tokens``, ``token_logprobs``, ``top_logprobs``)."""
    if not logprobs or not logprobs.get("tokens"):
        return None
    tops = logprobs.get("top_logprobs") or [None] * len(logprobs["tokens"])
    return tuple(
        TokenLogprob(text, float(logprob), tuple((t, float(lp)) for t, lp in (top or {}).items()))
        for text, logprob, top in zip(logprobs["tokens"], logprobs["token_logprobs"], tops, strict=True)
        if logprob is not None
    )


@dataclass(frozen=True)
class LlamaCppSettings:
    """The settings of one ``distil.LlamaCpp.v1`` model: :func:`make_llamacpp_model`'s arguments less the cache.

    The registered function keeps its typed arguments (spaCy validates and
    fills a config from them) and passes them through in one object, checked
    here once.
    """

    path: Optional[str] = None
    n_ctx: int = 2048
    n_threads: int = 1
    n_batch: int = 256
    temperature: float = 0.0
    repeat_penalty: float = 1.5
    seed: int = 0
    max_tokens: Optional[int] = None
    max_reasks: int = 1
    grammar: bool = True
    lazy_grammar: bool = True
    top_logprobs: int = 0
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"distil.LlamaCpp.v1: top_logprobs must be between 0 and 20, got {self.top_logprobs}")
        if self.n_ctx < 256:
            raise ValueError(f"distil.LlamaCpp.v1: n_ctx must be at least 256, got {self.n_ctx}")

    def model_file(self) -> Path:
        """The GGUF file to run: ``path``, or the packaged default model when it is unset."""
        if not self.path:
            return default_model_path()
        file = Path(self.path).expanduser()
        if not file.is_file():
            raise ValueError(f"distil.LlamaCpp.v1: model file not found: {file}. Give a .gguf path or leave path unset.")
        return file


class LlamaCppModel(TracksUsage, UsesResponseCache):
    """The model callable spacy-llm's ``llm`` component runs; see the module docstring."""

    def __init__(self, settings: LlamaCppSettings, cache: Optional[ResponseCache] = None) -> None:
        self.settings = settings
        self.path = settings.model_file()
        self.cache = cache
        self.usage = Usage(settings.price_per_1k_prompt, settings.price_per_1k_completion)
        self._llm: Any = None
        self._grammars: dict[str, Any] = {}  # insertion order is recency order (see _grammar)
        self._lock = threading.Lock()

    def distil_model_files(self) -> list[Path]:
        """The GGUF file this model runs (what it costs on disk)."""
        return [self.path]

    def __repr__(self) -> str:
        return f"LlamaCppModel(path={str(self.path)!r}, n_ctx={self.settings.n_ctx}, n_threads={self.settings.n_threads})"

    @property
    def context_length(self) -> int:
        """The context length in tokens (``n_ctx``), used by tasks to split long documents."""
        return self.settings.n_ctx

    @property
    def scores_answers(self) -> bool:
        """Whether answers come with token log-probabilities: the greedy loop's, with grammar and temperature 0.

        llama-cpp-python's sampling path returns log-probabilities only for a
        model created with ``logits_all`` (logits for every prompt token too,
        which slows every prompt), so answers decoded there carry no scores.
        """
        settings = self.settings
        return settings.grammar and settings.lazy_grammar and settings.temperature == 0.0

    @property
    def identity(self) -> dict[str, Any]:
        """What determines an answer besides the prompt: the cache key's model part."""
        settings = self.settings
        return {
            "backend": "llamacpp",
            "model": self.path.name,
            "size": self.path.stat().st_size,
            "temperature": settings.temperature,
            "repeat_penalty": settings.repeat_penalty,
            "seed": settings.seed,
            "max_tokens": settings.max_tokens,
            "grammar": settings.grammar,
            "lazy_grammar": settings.lazy_grammar,
        }

    def _load(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as err:
                raise ValueError(f"distil.LlamaCpp.v1 needs llama-cpp-python: {install_hint()}") from err
            # A llama.cpp build tuned to another CPU dies in decode with SIGSEGV/SIGILL and takes
            # the process along: try it in a child first (once per build and CPU), and fail with a message.
            ensure_runtime(self.path)
            _route_llama_logs()
            settings = self.settings
            self._llm = Llama(
                model_path=str(self.path),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                n_batch=settings.n_batch,
                seed=settings.seed,
                verbose=False,
            )
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.pop(key, None)
        if grammar is None:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        # Least recently used out: label shortlists give each document its own schema, so unbounded would grow.
        self._grammars[key] = grammar
        while len(self._grammars) > GRAMMARS_KEPT:
            del self._grammars[next(iter(self._grammars))]
        return grammar

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes for this model."""
        with self._lock:
            return len(self._load().tokenize(text.encode("utf-8"), add_bos=False))

    def send(self, request: LLMRequest) -> Completion:
        """Complete one prompt under the grammar of its JSON Schema."""
        settings = self.settings
        with self._lock:
            llm = self._load()
            prompt = request.completion_text()
            started = time.perf_counter()
            max_tokens = settings.max_tokens or request.max_tokens
            if self.scores_answers:
                try:
                    greedy = greedy_decode(
                        llm,
                        prompt,
                        self._grammar(request.json_schema),
                        max_tokens,
                        settings.repeat_penalty,
                        top_logprobs=settings.top_logprobs,
                    )
                except ValueError as err:
                    raise TransportError("context_overflow", str(err)) from err
                return Completion(
                    greedy.text,
                    greedy.prompt_tokens,
                    greedy.completion_tokens,
                    time.perf_counter() - started,
                    greedy.tokens,
                )
            try:
                result = llm.create_completion(
                    prompt,
                    max_tokens=max_tokens,
                    temperature=settings.temperature,
                    repeat_penalty=settings.repeat_penalty,
                    seed=settings.seed,
                    grammar=self._grammar(request.json_schema) if settings.grammar else None,
                )
            except ValueError as err:  # prompt longer than the context, mostly
                raise TransportError("context_overflow", str(err)) from err
            latency = time.perf_counter() - started
        tokens = result.get("usage") or {}
        choice = result["choices"][0]
        return Completion(
            choice["text"],
            int(tokens.get("prompt_tokens") or 0),
            int(tokens.get("completion_tokens") or 0),
            latency,
            _completion_logprobs(choice.get("logprobs")),  # None: llama.cpp gives them only with logits_all
        )

    def __call__(self, prompts: Iterable[Iterable[LLMRequest]]) -> Iterable[Iterable[LLMResponse]]:
        """Answer a batch, one request at a time, results grouped per doc in order."""
        for group in prompts:
            yield [
                resolve(
                    request,
                    self.send,
                    identity=self.identity,
                    usage=self.usage,
                    cache=self.cache,
                    max_reasks=self.settings.max_reasks,
                    wants_tokens=self.scores_answers,
                )
                for request in group
            ]


@registry.llm_models("distil.LlamaCpp.v1")
def make_llamacpp_model(
    path: Optional[str] = None,
    n_ctx: int = 2048,
    n_threads: int = 1,
    n_batch: int = 256,
    temperature: float = 0.0,
    repeat_penalty: float = 1.5,
    seed: int = 0,
    max_tokens: Optional[int] = None,
    max_reasks: int = 1,
    grammar: bool = True,
    lazy_grammar: bool = True,
    top_logprobs: int = 0,
    price_per_1k_prompt: float = 0.0,
    price_per_1k_completion: float = 0.0,
    cache: Optional[ResponseCache] = None,
) -> LlamaCppModel:
    """An in-process GGUF model; with no ``path``, the packaged Gemma 3 270M base model.

    ``n_threads`` CPU threads, ``n_ctx`` tokens of context (tasks split longer
    documents to fit), answers constrained by a JSON-Schema grammar unless
    ``grammar = false``; invalid answers are re-asked ``max_reasks`` times.
    ``repeat_penalty`` (1.5) stops a small model from repeating one mention
    until a list is full: on WNUT-17 it halved the tokens generated at equal F1.
    With ``lazy_grammar`` (and temperature 0) the grammar is consulted only
    when the model's greedy choice breaks it, which is several times faster.
    Greedy answers (the default) carry their tokens' log-probabilities (the tasks' scores);
    ``top_logprobs`` (0-20) also keeps that many alternatives per token, from
    which a category answer gets scores for the labels it did not choose.
    """
    # Every argument but the cache is a setting of the same name (a test pins the two lists together).
    arguments = dict(locals())
    return LlamaCppModel(LlamaCppSettings(**{f.name: arguments[f.name] for f in fields(LlamaCppSettings)}), cache=cache)
