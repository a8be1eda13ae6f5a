"""Ground mentions returned by an LLM to character offsets in the text.

An LLM returns entity *strings*; the Doc needs offsets. A mention is looked up
exactly, then case-insensitively, then with whitespace normalised (any run of
whitespace matches any other). Occurrences at word boundaries are preferred
over ones inside a longer word. A mention found nowhere is not written: the
caller counts it as ungrounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_WS = re.compile(r"\s+")


def _occurrences(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    for match in pattern.finditer(text):
        if match.end() > match.start():
            yield match.start(), match.end()


def _at_word_boundary(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    inner_first, inner_last = text[start], text[end - 1]
    left_ok = not (before.isalnum() and inner_first.isalnum())
    right_ok = not (after.isalnum() and inner_last.isalnum())
    return left_ok and right_ok


def ground(mention: str, text: str) -> list[tuple[int, int]]:
    """Every (start, end) where ``mention`` occurs in ``text`` by the first strategy that finds one.

    Strategies in order: exact, case-insensitive, whitespace-normalised and
    case-insensitive. Within a strategy, occurrences at word boundaries win; only
    if there are none are occurrences inside words returned.
    """
    mention = mention.strip()
    if not mention:
        return []
    words = _WS.split(mention)
    patterns = [
        re.compile(re.escape(mention)),
        re.compile(re.escape(mention), re.IGNORECASE),
        re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE),
    ]
    for pattern in patterns:
        found = list(_occurrences(pattern, text))
        if found:
            bounded = [(s, e) for s, e in found if _at_word_boundary(text, s, e)]
            return bounded or found
    return []
