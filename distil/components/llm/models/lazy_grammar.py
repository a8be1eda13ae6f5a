"""Greedy decoding that consults the grammar only when the model's own choice breaks it.

llama-cpp-python's samplers apply a grammar to every entry of the vocabulary
at every step (262k entries for Gemma 3), which makes each constrained token
several times as expensive as an unconstrained one. With greedy decoding the
result is the same if we take the most likely token, check only that token
against the grammar, and fall back to the full grammar pass when it is
rejected, which is what llama.cpp's own command-line sampler does. The fixed
prompt prefix is reused from the KV cache as in ``Llama.generate``.

The loop has every step's logits at hand, so it also returns each generated
token's log-probability (a numerically stable log-softmax over the logits the
choice was made from, i.e. after the repeat penalty, before the grammar): the
model's own belief in the token, which task scores are built from.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..protocol import TokenLogprob, TokenLogprobs


def _prefix_len(llm: Any, tokens: list[int]) -> int:
    n = 0
    for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens, strict=False):
        if a != b:
            break
        n += 1
    return min(n, len(tokens) - 1)  # evaluate at least one token so that logits are fresh


@dataclass(frozen=True)
class GreedyResult:
    """A greedy completion: its text, token counts, and each generated token with its log-probability."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    tokens: TokenLogprobs


def log_normaliser(logits: np.ndarray) -> float:
    """``log(sum(exp(logits)))`` computed stably (the maximum is subtracted before ``exp``).

    A token's log-probability is then ``logits[token] - log_normaliser(logits)``.
    """
    top = float(np.max(logits))
    return top + float(np.log(np.sum(np.exp(logits - top), dtype=np.float64)))


def _token_texts(llm: Any, ids: list[int]) -> list[str]:
    # Decode the growing byte string, so that a character split across tokens is attributed to the
    # token that completes it, and the pieces concatenate exactly to the decoded completion.
    texts: list[str] = []
    buffer = b""
    decoded = ""
    for token in ids:
        buffer += llm.detokenize([token])
        current = buffer.decode("utf-8", errors="ignore")
        if not current.startswith(decoded):
            current = decoded + current[len(decoded) :]
        texts.append(current[len(decoded) :])
        decoded = current
    return texts


def greedy_with_grammar(
    llm: Any,
    prompt: str,
    grammar: Any,
    max_tokens: int,
    repeat_penalty: float = 1.0,
    penalty_window: int = 64,
    logit_bias: Optional[dict[int, float]] = None,
) -> tuple[str, int, int]:
    """Complete ``prompt`` greedily under ``grammar``; returns (text, prompt tokens, completion tokens).

    ``logit_bias`` maps token ids to a value added to their logits before each
    choice, as in OpenAI's API (a probe uses it to trade precision for recall).
    """
    result = greedy_decode(llm, prompt, grammar, max_tokens, repeat_penalty, penalty_window, logit_bias)
    return result.text, result.prompt_tokens, result.completion_tokens


def greedy_decode(
    llm: Any,
    prompt: str,
    grammar: Any,
    max_tokens: int,
    repeat_penalty: float = 1.0,
    penalty_window: int = 64,
    logit_bias: Optional[dict[int, float]] = None,
    top_logprobs: int = 0,
) -> GreedyResult:
    """:func:`greedy_with_grammar` with each generated token's log-probability (and ``top_logprobs`` alternatives)."""
    import llama_cpp

    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    if len(tokens) + max_tokens > llm.n_ctx():
        raise ValueError(f"prompt of {len(tokens)} tokens + {max_tokens} answer tokens exceeds n_ctx {llm.n_ctx()}")
    prefix = _prefix_len(llm, tokens)
    if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
        llm.n_tokens = prefix
    else:
        llm.reset()
        prefix = 0
    llm.eval(tokens[prefix:])
    vocab = llm._model.vocab
    n_vocab = llm.n_vocab()
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
    one = (llama_cpp.llama_token_data * 1)()
    one_array = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
    full = np.recarray((n_vocab,), dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True))
    full_array = llama_cpp.llama_token_data_array(
        data=full.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab, selected=-1, sorted=False
    )
    ids = np.arange(n_vocab, dtype=np.intc)
    bias_ids = np.array(list(logit_bias or {}), dtype=np.intc)
    bias_values = np.array(list((logit_bias or {}).values()), dtype=np.single)
    out: list[int] = []
    logprobs: list[float] = []
    alternatives: list[tuple[tuple[int, float], ...]] = []
    try:
        for _ in range(max_tokens):
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).copy()
            if repeat_penalty != 1.0 and out:
                seen = np.unique(np.array(out[-penalty_window:], dtype=np.intc))
                values = logits[seen]
                logits[seen] = np.where(values > 0, values / repeat_penalty, values * repeat_penalty)
            if bias_ids.size:
                logits[bias_ids] += bias_values
            token = int(np.argmax(logits))
            one[0].id, one[0].logit, one[0].p = token, float(logits[token]), 0.0  # type: ignore[assignment]
            one_array.size, one_array.selected = 1, -1
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(one_array))
            if not np.isfinite(one[0].logit):
                full.id[:] = ids
                full.logit[:] = logits
                full.p[:] = 0.0
                full_array.size, full_array.selected, full_array.sorted = n_vocab, -1, False
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(full_array))
                token = int(np.argmax(full.logit))
                if not np.isfinite(full.logit[token]):
                    break  # the grammar allows nothing: give the (invalid) text back to be re-asked
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            llama_cpp.llama_sampler_accept(sampler, token)
            normaliser = log_normaliser(logits)
            logprobs.append(float(logits[token]) - normaliser)
            if top_logprobs > 0:
                best = np.argpartition(logits, -top_logprobs)[-top_logprobs:]
                best = best[np.argsort(-logits[best])]
                alternatives.append(tuple((int(i), float(logits[i]) - normaliser) for i in best))
            out.append(token)
            llm.eval([token])
    finally:
        llama_cpp.llama_sampler_free(sampler)
        llm._requires_eval = True  # Llama.generate must not trust logits left by this loop
    texts = _token_texts(llm, out)
    scored = tuple(
        TokenLogprob(
            piece,
            logprob,
            tuple((_token_texts(llm, [i])[0], lp) for i, lp in alternatives[n]) if alternatives else (),
        )
        for n, (piece, logprob) in enumerate(zip(texts, logprobs, strict=True))
    )
    return GreedyResult("".join(texts), len(tokens), len(out), scored)
