"""Greedy decoding that consults the grammar only when the model's own choice breaks it.

llama-cpp-python's samplers apply a grammar to every entry of the vocabulary
at every step (262k entries for Gemma 3), which makes each constrained token
several times as expensive as an unconstrained one. With greedy decoding the
result is the same if we take the most likely token, check only that token
against the grammar, and fall back to the full grammar pass when it is
rejected, which is what llama.cpp's own command-line sampler does. The fixed
prompt prefix is reused from the KV cache as in ``Llama.generate``.
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional

import numpy as np


def _prefix_len(llm: Any, tokens: list[int]) -> int:
    n = 0
    for a, b in zip(llm.input_ids[: llm.n_tokens].tolist(), tokens, strict=False):
        if a != b:
            break
        n += 1
    return min(n, len(tokens) - 1)  # evaluate at least one token so that logits are fresh


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
            out.append(token)
            llm.eval([token])
    finally:
        llama_cpp.llama_sampler_free(sampler)
        llm._requires_eval = True  # Llama.generate must not trust logits left by this loop
    text = llm.detokenize(out).decode("utf-8", errors="replace")
    return text, len(tokens), len(out)
