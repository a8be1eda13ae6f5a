"""Rule-based text classification: keyword, phrase, regex and token-pattern rules with weights.

Each rule names a label and a weight. A rule fires at most once per document
(a long text repeating a keyword is not more of that category). The weights of
the rules that fired are the evidence for their label, turned into scores:

- exclusive schema: a distribution, ``(evidence + prior) / sum(evidence + prior)``;
  when nothing fires, ``default_label`` (if set) gets the whole mass, else the
  ``prior`` alone decides (all zeros when ``prior`` is 0: no prediction);
- multi-label schema: independent scores, combined per label by noisy-OR,
  ``1 - prod(1 - weight)`` (weights are then probabilities in (0, 1]), to be
  compared with the schema threshold.

Keywords and phrases are matched with spaCy's ``PhraseMatcher`` on ``attr``
(``LOWER`` by default), token patterns with spaCy's ``Matcher``, regexes with
Python's ``re`` on the text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from ...annotations import write_cats
from ...schemas import TextCatSchema, ensure_schema
from .rule_files import (
    RuleComponent,
    RuleFileError,
    dump_rows,
    validate_rows,
)

MATCHER_ATTRS = ("ORTH", "LOWER", "NORM", "LEMMA", "SHAPE")


class TextCatRule(BaseModel):
    """One category rule: exactly one of ``keyword``, ``phrase``, ``regex`` or ``pattern``, a label and a weight.

    ``keyword`` and ``phrase`` accept a string or a list of strings (any of them
    fires the rule); ``pattern`` is a spaCy ``Matcher`` token pattern.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0.0)
    keyword: str | list[str] | None = None
    phrase: str | list[str] | None = None
    regex: str | None = None
    pattern: list[dict[str, Any]] | None = None
    ignore_case: bool = True

    @field_validator("keyword")
    @classmethod
    def _single_tokens(cls, value: str | list[str] | None) -> str | list[str] | None:
        for word in [value] if isinstance(value, str) else value or []:
            if not word.strip() or any(ch.isspace() for ch in word.strip()):
                raise ValueError(f"keyword {word!r} must be one word; use 'phrase' for several words")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"regex {value!r} does not compile: {err}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TextCatRule:
        kinds = [k for k in ("keyword", "phrase", "regex", "pattern") if getattr(self, k) not in (None, [], "")]
        if len(kinds) != 1:
            raise ValueError(f"a rule needs exactly one of keyword, phrase, regex, pattern; got {kinds or 'none'}")
        return self

    @property
    def texts(self) -> list[str]:
        """The keyword or phrase strings of this rule (empty for regex and pattern rules)."""
        value = self.keyword if self.keyword is not None else self.phrase
        if value is None:
            return []
        return [value] if isinstance(value, str) else list(value)


class TextCatRules(RuleComponent):
    """Score every schema label from the rules that fire on a document; writes ``doc.cats``."""

    distil_task = "textcat"

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        schema: TextCatSchema,
        attr: str = "LOWER",
        default_label: str | None = None,
        prior: float = 0.0,
    ) -> None:
        if attr not in MATCHER_ATTRS:
            raise ValueError(f"component {name!r}: attr must be one of {', '.join(MATCHER_ATTRS)}, got {attr!r}")
        if prior < 0:
            raise ValueError(f"component {name!r}: prior must be >= 0, got {prior}")
        if default_label is not None:
            schema.check_labels([default_label], what=f"{name!r} default_label")
        self.nlp = nlp
        self.name = name
        self.schema = schema
        self.attr = attr
        self.default_label = default_label
        self.prior = float(prior)
        self.rules: list[TextCatRule] = []
        self._reset_matchers()

    @property
    def labels(self) -> tuple[str, ...]:
        """The schema labels (every one gets a score)."""
        return self.schema.label_names

    def _reset_matchers(self) -> None:
        self._phrases = PhraseMatcher(self.nlp.vocab, attr=self.attr)
        self._tokens = Matcher(self.nlp.vocab, validate=True)
        self._regexes: list[tuple[int, re.Pattern[str]]] = []

    def add_rules(self, rules: Iterable[TextCatRule], where: str = "rules") -> None:
        """Add validated rules after checking their labels against the schema (and, multi-label, their weights)."""
        new = list(rules)
        self.schema.check_labels((rule.label for rule in new), what=f"{self.name!r} {where}")
        if not self.schema.exclusive:
            heavy = sorted({rule.weight for rule in new if rule.weight > 1.0})
            if heavy:
                raise RuleFileError(
                    f"{self.name!r} {where}: weights {heavy} exceed 1.0; with a multi-label schema a weight is the "
                    f"probability that the rule's label applies (scores combine by noisy-OR)"
                )
        for rule in new:
            index = len(self.rules)
            self.rules.append(rule)
            key = str(index)
            if rule.texts:
                # Tokenise with the bare tokenizer: the pattern must look like the doc does at this point.
                self._phrases.add(key, [self.nlp.make_doc(text) for text in rule.texts])
            elif rule.pattern is not None:
                try:
                    self._tokens.add(key, [rule.pattern])
                except ValueError as err:
                    raise RuleFileError(f"{self.name!r} {where}: invalid token pattern {rule.pattern!r}: {err}") from None
            elif rule.regex is not None:
                self._regexes.append((index, re.compile(rule.regex, re.IGNORECASE if rule.ignore_case else 0)))

    def fired(self, doc: Doc) -> list[int]:
        """Indices of the rules that fire on ``doc``, each once, in rule order."""
        hits: set[int] = set()
        strings = self.nlp.vocab.strings
        for matcher in (self._phrases, self._tokens):
            if len(matcher):
                hits.update(int(strings[match_id]) for match_id, _, _ in matcher(doc))
        hits.update(index for index, regex in self._regexes if regex.search(doc.text))
        return sorted(hits)

    def scores(self, doc: Doc) -> dict[str, float]:
        """The score of every schema label for ``doc`` (see the module docstring for the formulas)."""
        labels = self.schema.label_names
        fired = [self.rules[i] for i in self.fired(doc)]
        if not self.schema.exclusive:
            miss = dict.fromkeys(labels, 1.0)
            for rule in fired:
                miss[rule.label] *= 1.0 - rule.weight
            return {label: 1.0 - miss[label] for label in labels}
        evidence = dict.fromkeys(labels, 0.0)
        for rule in fired:
            evidence[rule.label] += rule.weight
        if not fired and self.default_label is not None:
            evidence[self.default_label] = 1.0
        total = sum(evidence.values()) + self.prior * len(labels)
        if total <= 0 or math.isclose(total, 0.0):
            return dict.fromkeys(labels, 0.0)
        return {label: (evidence[label] + self.prior) / total for label in labels}

    def __call__(self, doc: Doc) -> Doc:
        """Write ``doc.cats`` with a score for every schema label."""
        return write_cats(doc, self.scores(doc), self.schema)

    def _state(self) -> dict[str, Any]:
        return {"attr": self.attr, "default_label": self.default_label, "prior": self.prior,
                "rules": dump_rows(self.rules)}

    def _load_state(self, state: dict[str, Any], where: str) -> None:
        self.attr = state.get("attr", self.attr)
        self.default_label = state.get("default_label", self.default_label)
        self.prior = float(state.get("prior", self.prior))
        rows = [(f"{where}[{i}]", row) for i, row in enumerate(state.get("rules") or [])]
        self.rules = []
        self._reset_matchers()
        self.add_rules(validate_rows(TextCatRule, rows), where)


def make_textcat_rules(
    nlp: Language,
    name: str,
    schema: TextCatSchema | None,
    rules: Sequence[dict[str, Any]] | None,
    rules_path: str | Path | None,
    attr: str,
    default_label: str | None,
    prior: float,
) -> TextCatRules:
    """Build the rule-based text classifier from inline ``rules`` and/or a JSONL ``rules_path``."""
    checked = ensure_schema(schema, TextCatSchema, name)
    component = TextCatRules(nlp, name, schema=checked, attr=attr, default_label=default_label, prior=prior)
    return component.configure(nlp, name, TextCatRule, rules, rules_path, "textcat rules")


Language.factory(
    "distil_textcat_rules",
    assigns=["doc.cats"],
    default_config={
        "schema": None,
        "rules": None,
        "rules_path": None,
        "attr": "LOWER",
        "default_label": None,
        "prior": 0.0,
    },
    default_score_weights={"cats_score": 1.0},
)(make_textcat_rules)
