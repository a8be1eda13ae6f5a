"""Run a pipeline over many documents without letting one bad document sink the batch.

``nlp.pipe`` processes documents in batches; if a batch raises (a text longer
than ``nlp.max_length``, a component bug triggered by one input), the batch is
re-run one document at a time so that every other document still gets its
annotations and the bad one is reported as a counted failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar, Union

from spacy.language import Language
from spacy.tokens import Doc

T = TypeVar("T")


@dataclass(frozen=True)
class DocError(Generic[T]):
    """A document the pipeline could not process, and why."""

    item: T
    reason: str


def _check_length(nlp: Language, text: str) -> None:
    if len(text) > nlp.max_length:
        raise ValueError(
            f"text of {len(text):,} characters exceeds nlp.max_length ({nlp.max_length:,}); "
            f"split the document or raise [nlp] max_length"
        )


def process(
    nlp: Language,
    items: Iterable[T],
    text_of: Callable[[T], Union[Doc, str]],
    *,
    batch_size: int = 64,
) -> Iterator[tuple[T, Union[Doc, DocError[T]]]]:
    """Yield ``(item, doc)`` for every item, or ``(item, DocError)`` for one that failed.

    ``text_of`` turns an item into the text (or a pre-made Doc, e.g. one that
    already carries gold entities) to run the pipeline on. Order is preserved.
    """
    iterator = iter(items)
    while True:
        batch = list(islice(iterator, batch_size))
        if not batch:
            return
        inputs_ = [text_of(item) for item in batch]
        try:
            for value in inputs_:
                _check_length(nlp, value.text if isinstance(value, Doc) else value)
            docs = list(nlp.pipe(inputs_))
        except Exception:
            yield from _one_by_one(nlp, batch, inputs_)
            continue
        yield from zip(batch, docs, strict=True)


def _one_by_one(
    nlp: Language, batch: list[T], inputs: list[Union[Doc, str]]
) -> Iterator[tuple[T, Union[Doc, DocError[T]]]]:
    for item, value in zip(batch, inputs, strict=True):
        try:
            _check_length(nlp, value.text if isinstance(value, Doc) else value)
            yield item, nlp(value)
        except Exception as err:  # a failure of one document is data, not a crash
            yield item, DocError(item, f"{type(err).__name__}: {err}")

