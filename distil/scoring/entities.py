"""Entity scores: spaCy's own NER P/R/F, through ``Example`` alignment.

Gold documents may be tokenised differently from the pipeline (a CoNLL file's
tokens vs spaCy's tokenizer); ``spacy.training.Example`` aligns the two by
characters, so an entity counts as correct when its span and label match after
alignment, exactly as ``spacy evaluate`` counts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example


def score_entities(pairs: Iterable[tuple[Doc, Doc]]) -> dict[str, Any]:
    """Score ``(predicted, gold)`` Doc pairs: ``ents_p``, ``ents_r``, ``ents_f``, ``ents_per_type``.

    Values are fractions in [0, 1]; they are ``None`` when neither side has any
    entity (nothing to measure), as spaCy reports them.
    """
    examples = [Example(predicted, gold) for predicted, gold in pairs]
    return dict(get_ner_prf(examples))
