"""Rule-based NER: spaCy's ``EntityRuler``, checked against the NER schema and writing scored entities.

Matching is spaCy's own (token patterns with the ``Matcher``, phrase patterns
with the ``PhraseMatcher``); this component adds what the distil contract
needs: every pattern label is checked against the schema when patterns are
added (at load time, and again when a saved pipeline is read back), and the
entities are written through :func:`distil.annotations.write_entities` so that
``span._.score`` holds the configured confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.pipeline import EntityRuler
from spacy.tokens import Doc
from spacy.util import SimpleFrozenList

from ...annotations import EntityPrediction, entity_score, write_entities
from ...schemas import NERSchema, ensure_schema
from .rule_files import RuleFileError, gather_rows, mark_embedded, restored_from_disk

PatternRow = dict[str, Any]
# Phrase-matcher attributes the tokenizer alone sets (None means ORTH).
TOKENIZER_ATTRS = (None, "ORTH", "TEXT", "LOWER", "NORM", "SHAPE")


def check_pattern(where: str, row: Any) -> None:
    """Raise :class:`RuleFileError` naming ``where`` if ``row`` is not an EntityRuler pattern."""
    if not isinstance(row, dict) or "label" not in row or "pattern" not in row:
        raise RuleFileError(
            f"{where}: a pattern needs a 'label' and a 'pattern' "
            f'(e.g. {{"label": "person", "pattern": "Tim Cook"}}), got {row!r}'
        )
    if not isinstance(row["pattern"], (str, list)):
        raise RuleFileError(f"{where}: 'pattern' must be a string or a list of token dicts, got {row['pattern']!r}")


class NERRules(EntityRuler):
    """An ``EntityRuler`` whose labels must belong to an :class:`NERSchema`.

    ``score`` is the confidence written for every entity it finds (rules carry
    no probability; a lower value lets a model's or an LLM's entities win an
    overlap in a later component that resolves by score).
    """

    distil_task = "ner"

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        schema: NERSchema,
        phrase_matcher_attr: str | None = None,
        overwrite_ents: bool = False,
        score: float = 1.0,
    ) -> None:
        self.schema = schema
        self.ent_score = float(score)
        super().__init__(nlp, name, phrase_matcher_attr=phrase_matcher_attr, overwrite_ents=overwrite_ents)

    def add_patterns(self, patterns: Iterable[PatternRow]) -> None:  # type: ignore[override]
        """Add EntityRuler patterns after checking their shape and that every label is in the schema."""
        rows = list(patterns)
        for i, row in enumerate(rows):
            check_pattern(f"NER pattern {i}", row)
        self.schema.check_labels((str(row["label"]) for row in rows), what=f"{self.name!r} patterns")
        # EntityRuler runs phrase patterns through the components before it;
        # when matching on tokenizer attributes only, that is wasted work (or
        # worse: LLM calls), so those components are switched off meanwhile.
        others = [] if self.phrase_matcher_attr not in TOKENIZER_ATTRS else [
            name for name, pipe in self.nlp.pipeline if pipe is not self and name not in self.nlp.disabled
        ]
        with self.nlp.select_pipes(disable=others):
            super().add_patterns(rows)  # type: ignore[arg-type]

    def from_bytes(self, patterns_bytes: bytes, *, exclude: Iterable[str] = SimpleFrozenList()) -> NERRules:
        """Load patterns and settings from :meth:`to_bytes` output.

        spaCy's ``EntityRuler.from_bytes`` adds the phrase patterns before it
        rebuilds the ``PhraseMatcher`` for ``phrase_matcher_attr``, which loses
        them; here the settings come first.
        """
        cfg = srsly.msgpack_loads(patterns_bytes)
        if not isinstance(cfg, dict):
            super().from_bytes(patterns_bytes, exclude=exclude)
            return self
        self.overwrite = cfg.get("overwrite", False)
        self.phrase_matcher_attr = cfg.get("phrase_matcher_attr")
        self.ent_id_sep = cfg.get("ent_id_sep", self.ent_id_sep)
        self.clear()
        self.add_patterns(cfg.get("patterns", []))
        return self

    def __call__(self, doc: Doc) -> Doc:
        """Find pattern matches and write them as entities (with ``span._.score``)."""
        previous = {(e.start_char, e.end_char, e.label_): entity_score(e) for e in doc.ents}
        # EntityRuler decides which matches win (longest first, existing
        # entities kept unless overwrite_ents); we only rewrite the result
        # through the canonical writer so that scores are stored.
        super().set_annotations(doc, self.match(doc))
        predictions = []
        for ent in doc.ents:
            key = (ent.start_char, ent.end_char, ent.label_)
            predictions.append(EntityPrediction(*key, previous[key] if key in previous else self.ent_score))
        return write_entities(doc, predictions, overlap="longest")


def make_ner_rules(
    nlp: Language,
    name: str,
    schema: NERSchema | None,
    patterns: Sequence[PatternRow] | None,
    patterns_path: str | Path | None,
    phrase_matcher_attr: str | None,
    overwrite_ents: bool,
    score: float,
) -> NERRules:
    """Build the rule-based NER component from inline ``patterns`` and/or a JSONL ``patterns_path``."""
    checked = ensure_schema(schema, NERSchema, name)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"component {name!r}: score must be between 0 and 1, got {score}")
    ruler = NERRules(
        nlp, name, schema=checked, phrase_matcher_attr=phrase_matcher_attr, overwrite_ents=overwrite_ents, score=score
    )
    file = None if restored_from_disk(nlp, name) else patterns_path
    rows = gather_rows(patterns, file, "NER patterns")
    for where, row in rows:
        check_pattern(where, row)
        # Checked per row here, where the row's file:line is known; add_patterns checks them all again, unnamed.
        checked.check_labels([str(row["label"])], what=f"{where}: {name!r} pattern")
    ruler.add_patterns([row for _, row in rows])
    mark_embedded(nlp, name)
    return ruler


Language.factory(
    "distil_ner_rules",
    assigns=["doc.ents", "token.ent_type", "token.ent_iob"],
    default_config={
        "schema": None,
        "patterns": None,
        "patterns_path": None,
        "phrase_matcher_attr": None,
        "overwrite_ents": False,
        "score": 1.0,
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)(make_ner_rules)
