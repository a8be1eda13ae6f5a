"""Confidences of answer items from the log-probabilities of the tokens that wrote them.

Both models return, with a completion, the generated tokens with their
log-probabilities (:class:`~.protocol.TokenLogprob`): llama.cpp computes them
in process from the logits, OpenAI-compatible servers return them when asked
(``logprobs``). This module is the one mapping from tokens to answer items,
shared by every model and task: the raw answer is parsed once more with the
character span of every JSON value, and an item's score is the probability of
the tokens that overlap its span.

The score of an item is the **product** of its tokens' probabilities, i.e. the
probability the model gave to writing exactly that item (after the prefix),
not the geometric mean. A geometric mean would hide one doubtful token among
confident ones (a mention "New York Times" whose first word is a coin flip
would score ~0.8), and the first tokens of an item are where the model
decides whether to write it at all; the later tokens of a multi-token name are
mostly near 1, so the product's penalty on long items is small in practice.
A string item's span starts at its opening quote, because the token carrying
the quote (often ``["`` or ``, "``) is where the model decides to write
another item rather than close the list; the closing quote is left out,
because its token usually also decides what comes next.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .protocol import TokenLogprob, TokenLogprobs

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WS = " \t\n\r"

PathItem = Union[str, int]


@dataclass
class Located:
    """A JSON value with the character span ``[start, end)`` it occupies in the raw answer."""

    value: Any
    start: int
    end: int
    children: Union[dict[str, Located], list[Located], None] = field(default=None)

    def get(self, path: Sequence[PathItem]) -> Optional[Located]:
        """The value at ``path`` (object keys and list indices), or ``None`` when absent."""
        node: Optional[Located] = self
        for step in path:
            if node is None or node.children is None:
                return None
            if isinstance(node.children, dict):
                node = node.children.get(str(step))
            elif isinstance(step, int) and 0 <= step < len(node.children):
                node = node.children[step]
            else:
                return None
        return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _WS:
            i += 1
        return i

    def value(self, i: int) -> Located:
        i = self.skip(i)
        if i >= len(self.text):
            raise ValueError("unexpected end")
        char = self.text[i]
        if char == "{":
            return self.obj(i)
        if char == "[":
            return self.array(i)
        if char == '"':
            string, end = json.decoder.scanstring(self.text, i + 1)  # type: ignore[attr-defined]
            return Located(string, i, end)
        for literal, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(literal, i):
                return Located(value, i, i + len(literal))
        match = _NUMBER.match(self.text, i)
        if not match:
            raise ValueError(f"unexpected {char!r} at {i}")
        return Located(json.loads(match.group()), i, match.end())

    def obj(self, start: int) -> Located:
        children: dict[str, Located] = {}
        i = self.skip(start + 1)
        if self.text.startswith("}", i):
            return Located({}, start, i + 1, children)
        while True:
            key = self.value(i)
            if not isinstance(key.value, str):
                raise ValueError("object key is not a string")
            i = self.skip(key.end)
            if not self.text.startswith(":", i):
                raise ValueError("':' expected")
            item = self.value(i + 1)
            children[key.value] = item
            i = self.skip(item.end)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("}", i):
                return Located({k: v.value for k, v in children.items()}, start, i + 1, children)
            raise ValueError("',' or '}' expected")

    def array(self, start: int) -> Located:
        items: list[Located] = []
        i = self.skip(start + 1)
        if self.text.startswith("]", i):
            return Located([], start, i + 1, items)
        while True:
            item = self.value(i)
            items.append(item)
            i = self.skip(item.end)
            if self.text.startswith(",", i):
                i += 1
                continue
            if self.text.startswith("]", i):
                return Located([v.value for v in items], start, i + 1, items)
            raise ValueError("',' or ']' expected")


def locate_json(raw: str) -> Optional[Located]:
    """The first JSON value in ``raw`` with the span of every nested value, or ``None`` if unreadable."""
    starts = [i for i in (raw.find("{"), raw.find("[")) if i >= 0]
    if not starts:
        return None
    try:
        return _Parser(raw).value(min(starts))
    except (ValueError, IndexError):
        return None


class AnswerScores:
    """The probabilities of the items of one answer, from its raw text and generated tokens.

    Built by :func:`answer_scores`; every method returns ``None`` when the
    span is not found, so a task writes "no score" rather than a made-up one.
    """

    def __init__(self, raw: str, tokens: TokenLogprobs, tree: Located) -> None:
        self.raw = raw
        self.tokens = tokens
        self.tree = tree
        self._starts: list[int] = []
        offset = 0
        for token in tokens:
            self._starts.append(offset)
            offset += len(token.text)

    def _overlapping(self, start: int, end: int) -> list[int]:
        return [
            i for i, (first, token) in enumerate(zip(self._starts, self.tokens, strict=True))
            if first < end and first + max(1, len(token.text)) > start
        ]

    def span_probability(self, start: int, end: int) -> Optional[float]:
        """The product of the probabilities of the tokens overlapping characters ``[start, end)``."""
        indices = self._overlapping(start, end)
        if not indices:
            return None
        return math.exp(sum(self.tokens[i].logprob for i in indices))

    def answer_probability(self) -> Optional[float]:
        """The probability of the whole JSON answer: of every token from its first to its last character.

        For an empty answer (``{}``, ``{"relations": []}``) this is how sure
        the model was that there is nothing to find; the task writes it with
        :func:`distil.annotations.write_empty_score`.
        """
        return self.span_probability(self.tree.start, self.tree.end)

    def item(self, path: Sequence[PathItem]) -> Optional[float]:
        """The score of the value at ``path``: a string from its opening quote to its last character."""
        node = self.tree.get(path)
        if node is None:
            return None
        end = node.end - 1 if isinstance(node.value, str) else node.end
        return self.span_probability(node.start, max(end, node.start + 1))

    def alternatives(self, path: Sequence[PathItem]) -> list[tuple[str, float]]:
        """At the token where the string at ``path`` begins: each alternative token's text after the quote, with its probability.

        Only the part of an alternative that would stand where the string's
        first characters stand is returned (the opening quote and anything
        before it in the same token removed); alternatives that do not open
        the string the same way are left out. Empty when the model gave no
        alternatives.
        """
        node = self.tree.get(path)
        if node is None or not isinstance(node.value, str):
            return []
        first_char = node.start + 1  # the string's first character, after the quote
        indices = self._overlapping(first_char, first_char + 1)
        if not indices:
            return []
        token_index = indices[0]
        token_start = self._starts[token_index]
        lead = self.raw[token_start:first_char]  # e.g. '"' or ' "' when the quote shares the token
        out: list[tuple[str, float]] = []
        for text, logprob in self.tokens[token_index].top:
            if text.startswith(lead) and len(text) > len(lead):
                out.append((text[len(lead) :], math.exp(logprob)))
        return out


def answer_scores(raw: Optional[str], tokens: Optional[TokenLogprobs]) -> Optional[AnswerScores]:
    """The item scorer of an answer, or ``None`` without tokens or when the tokens do not spell ``raw``.

    The check that the token texts concatenate to the answer guards against
    a server that reports tokens of something else (another choice, a
    stripped text): a score is then absent, never misattributed.
    """
    if not raw or not tokens:
        return None
    if "".join(t.text for t in tokens) != raw:
        return None
    tree = locate_json(raw)
    return None if tree is None else AnswerScores(raw, tokens, tree)


def label_distribution(
    scores: AnswerScores, path: Sequence[PathItem], chosen: str, candidates: Sequence[str]
) -> dict[str, float]:
    """Scores for every candidate label from the answer's label string at ``path``.

    The chosen label scores its sequence probability. Another label gets the
    probability of an alternative token at the position where the label
    starts, when that token begins it (shared equally among the labels the
    token begins), capped so that it never exceeds the chosen label's score:
    under greedy decoding the chosen label was the model's answer, and the
    score of a label the model did not finish is only an upper bound on its
    probability. Labels with no alternative score 0. The scores are then
    divided by their sum, so they form a distribution whose maximum is the
    chosen label (1.0 when the model offered no alternative).
    """
    chosen_score = scores.item(path)
    out = dict.fromkeys(candidates, 0.0)
    if chosen_score is None:
        out[chosen] = 1.0
        return out
    first_text = ""
    node = scores.tree.get(path)
    alternatives = scores.alternatives(path)
    if node is not None:
        first = scores._overlapping(node.start + 1, node.start + 2)
        if first:
            token = first[0]
            first_text = scores.raw[node.start + 1 : scores._starts[token] + len(scores.tokens[token].text)]
    for text, probability in alternatives:
        if first_text and text == first_text:
            continue  # the chosen token itself: its label is scored by its sequence
        matching = [label for label in candidates if label != chosen and label.startswith(text)]
        for label in matching:
            out[label] = max(out[label], min(probability / len(matching), chosen_score * 0.999))
    out[chosen] = chosen_score
    # A distribution over the candidates, as spaCy's exclusive textcat writes: the raw values are
    # probabilities over the whole vocabulary (the grammar is not applied to them), tiny for a label
    # of several tokens, and a consumer that reads 0.5 as "positive" (training, thresholds) would
    # see no label at all. Renormalised, the chosen label keeps the maximum (it is never below an
    # alternative) and its share says how much of the candidates' mass the model put on it.
    total = sum(out.values())
    return {label: value / total for label, value in out.items()} if total > 0 else out


def logprob_tokens(pieces: Sequence[tuple[str, float]]) -> TokenLogprobs:
    """Tokens from (text, logprob) pairs, without alternatives (a convenience for models and tests)."""
    return tuple(TokenLogprob(text, logprob) for text, logprob in pieces)


def empty_answer_probability(answers: Sequence[tuple[Optional[str], Optional[TokenLogprobs]]]) -> Optional[float]:
    """The probability the model gave to answering "nothing" in every one of ``answers`` (raw text, tokens).

    The product over the answers (chunks) of each whole answer's probability:
    1.0 when there was nothing to ask (no answer), ``None`` when an answer has
    no usable log-probabilities, so that a missing score is never read as certainty.
    """
    probability = 1.0
    for raw, tokens in answers:
        scores = answer_scores(raw, tokens)
        value = scores.answer_probability() if scores is not None else None
        if value is None:
            return None
        probability *= value
    return probability
