"""Rule-based relation extraction between typed entities of the same sentence.

A rule looks at each ordered pair of entities ``(first, second)`` in text order
within one sentence, at most ``max_distance`` tokens apart, and fires when the
tokens between them contain one of its ``triggers`` (a word or phrase compared
on ``LOWER`` or ``LEMMA``) and/or match its spaCy ``Matcher`` token
``pattern``. ``direction`` says which of the two is the head: ``head_first``
(``"Tim Cook works for Apple"``) or ``tail_first`` (``"Apple hired Tim Cook"``).
``head``/``tail`` restrict the entity labels; the relation schema must allow
them (checked at load time) and is checked again for every pair at run time.

Entities come from ``doc.ents``: an upstream NER component, or the input Doc
itself (gold entities, e.g. ``nlp(doc)`` on a Doc built with
:func:`distil.records.from_record`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from ...annotations import RelationPrediction, write_relations
from ...schemas import RelationLabelSpec, RELSchema, SchemaError, ensure_schema
from .rule_files import (
    RuleComponent,
    RuleFileError,
    dump_rows,
    validate_rows,
)


class RelationRule(BaseModel):
    """One relation rule; see the module docstring for how it is applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    head: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    pattern: list[dict[str, Any]] | None = None
    attr: Literal["LOWER", "LEMMA"] = "LOWER"
    whole_gap: bool = Field(default=False, description="The trigger/pattern must cover every token between.")
    direction: Literal["head_first", "tail_first"] = "head_first"
    max_distance: int = Field(default=8, ge=0, description="Most tokens allowed between the two entities.")
    entities_between: bool = Field(default=False, description="Whether other entities may sit between the two.")
    score: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _listify(cls, data: Any) -> Any:
        # "head": "person" and "triggers": "of" are natural to write; accept them as one-item lists.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("head", "tail", "triggers"):
                if isinstance(data.get(key), str):
                    data[key] = [data[key]]
        return data

    @model_validator(mode="after")
    def _has_evidence(self) -> RelationRule:
        if not self.triggers and self.pattern is None:
            raise ValueError("a relation rule needs 'triggers' and/or a token 'pattern'")
        if any(not t.strip() for t in self.triggers):
            raise ValueError("empty trigger")
        return self


class RelationRules(RuleComponent):
    """Find relations between entity pairs with trigger/pattern rules; writes ``doc._.relations``."""

    distil_task = "rel"

    def __init__(self, nlp: Language, name: str, *, schema: RELSchema, one_label_per_pair: bool = True) -> None:
        self.nlp = nlp
        self.name = name
        self.schema = schema
        self.one_label_per_pair = one_label_per_pair
        self.rules: list[RelationRule] = []
        self._triggers: list[list[tuple[str, ...]]] = []
        self._matcher = Matcher(nlp.vocab, validate=True)

    @property
    def labels(self) -> tuple[str, ...]:
        """The relation labels of the schema."""
        return self.schema.label_names

    def add_rules(self, rules: Iterable[RelationRule], where: str = "rules") -> None:
        """Add rules after checking each label, and its head/tail entity labels, against the schema."""
        new = list(rules)
        self.schema.check_labels((rule.label for rule in new), what=f"{self.name!r} {where}")
        for rule in new:
            spec = self.schema.get(rule.label)
            bad = [(h, t) for h in rule.head or (None,) for t in rule.tail or (None,) if not _schema_allows(spec, h, t)]
            if bad:
                pairs = ", ".join(f"{h or 'any'} -> {t or 'any'}" for h, t in bad)
                raise SchemaError(
                    f"{self.name!r} {where}: rule for {rule.label!r} uses head -> tail entity labels the schema does "
                    f"not allow: {pairs}. The schema allows head {list(spec.head) or 'any'} -> tail "
                    f"{list(spec.tail) or 'any'}; fix the rule or the [schemas.rel] block."
                )
            index = len(self.rules)
            self.rules.append(rule)
            self._triggers.append([self._words(t) for t in rule.triggers])
            if rule.pattern is not None:
                try:
                    self._matcher.add(str(index), [rule.pattern])
                except ValueError as err:
                    raise RuleFileError(f"{self.name!r} {where}: invalid token pattern {rule.pattern!r}: {err}") from None

    def _words(self, trigger: str) -> tuple[str, ...]:
        # Triggers are compared token by token, lower-cased; with attr LEMMA
        # the trigger itself is written as lemmas ("cause by").
        return tuple(token.lower_ for token in self.nlp.make_doc(trigger))

    def __call__(self, doc: Doc) -> Doc:
        """Write the relations the rules find between ``doc.ents`` (those already there are replaced)."""
        ents = list(doc.ents)
        if len(ents) < 2 or not self.rules:
            return write_relations(doc, [], self.schema)
        if any(rule.attr == "LEMMA" for rule in self.rules) and not doc.has_annotation("LEMMA"):
            raise ValueError(
                f"component {self.name!r} has rules with attr LEMMA but the doc has no lemmas; add a lemmatizer "
                f"before it in the pipeline or use attr LOWER"
            )
        pattern_hits: dict[int, list[tuple[int, int]]] = {}
        if len(self._matcher):
            for match_id, start, end in self._matcher(doc):
                pattern_hits.setdefault(int(self.nlp.vocab.strings[match_id]), []).append((start, end))
        sentence = self._sentence_ids(doc)
        # Token strings once per doc, not once per pair and rule.
        words = {"LOWER": [t.lower_ for t in doc]}
        if any(rule.attr == "LEMMA" for rule in self.rules):
            words["LEMMA"] = [t.lemma_.lower() for t in doc]
        reach = max(rule.max_distance for rule in self.rules)
        found: dict[tuple[int, int], list[tuple[float, int, RelationPrediction]]] = {}
        for i, first in enumerate(ents):
            for j in range(i + 1, len(ents)):
                second = ents[j]
                # Entities are in text order: once a pair is too far apart, every later one is too.
                if sentence[first.start] != sentence[second.start] or second.start - first.end > reach:
                    break
                for index, rule in enumerate(self.rules):
                    if not self._fires(index, rule, first, second, j - i - 1, pattern_hits, words):
                        continue
                    head, tail = (i, j) if rule.direction == "head_first" else (j, i)
                    if not self._labels_fit(rule, ents[head].label_, ents[tail].label_):
                        continue
                    found.setdefault((i, j), []).append((rule.score, -index, RelationPrediction(head, tail, rule.label,
                                                                                                 rule.score)))
        predictions: list[RelationPrediction] = []
        for candidates in found.values():
            candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
            predictions.extend([candidates[0][2]] if self.one_label_per_pair else [c[2] for c in candidates])
        return write_relations(doc, predictions, self.schema)

    def _labels_fit(self, rule: RelationRule, head_label: str, tail_label: str) -> bool:
        if rule.head and head_label not in rule.head:
            return False
        if rule.tail and tail_label not in rule.tail:
            return False
        return rule.label in self.schema.allowed_labels(head_label, tail_label)

    def _fires(
        self,
        index: int,
        rule: RelationRule,
        first: Span,
        second: Span,
        between_ents: int,
        pattern_hits: dict[int, list[tuple[int, int]]],
        words: dict[str, list[str]],
    ) -> bool:
        gap_start, gap_end = first.end, second.start
        if gap_end - gap_start > rule.max_distance or (between_ents and not rule.entities_between):
            return False
        if rule.triggers:
            gap = tuple(words[rule.attr][gap_start:gap_end])
            if not any(_contains(gap, words, rule.whole_gap) for words in self._triggers[index]):
                return False
        if rule.pattern is not None:
            spans = pattern_hits.get(index, [])
            if rule.whole_gap:
                return (gap_start, gap_end) in spans
            return any(gap_start <= s and e <= gap_end for s, e in spans)
        return True

    @staticmethod
    def _sentence_ids(doc: Doc) -> list[int]:
        if not doc.has_annotation("SENT_START"):
            return [0] * len(doc)
        ids, current = [], 0
        for token in doc:
            if token.is_sent_start and token.i > 0:
                current += 1
            ids.append(current)
        return ids

    def _state(self) -> dict[str, Any]:
        return {"one_label_per_pair": self.one_label_per_pair, "rules": dump_rows(self.rules)}

    def _load_state(self, state: dict[str, Any], where: str) -> None:
        self.one_label_per_pair = bool(state.get("one_label_per_pair", self.one_label_per_pair))
        self.rules, self._triggers = [], []
        self._matcher = Matcher(self.nlp.vocab, validate=True)
        rows = [(f"{where}[{i}]", row) for i, row in enumerate(state.get("rules") or [])]
        self.add_rules(validate_rows(RelationRule, rows), where)


def _schema_allows(spec: RelationLabelSpec, head: str | None, tail: str | None) -> bool:
    # None stands for "any label" on the rule's side: it is allowed whatever the schema restricts.
    def fits(h: str | None, t: str | None) -> bool:
        return (h is None or not spec.head or h in spec.head) and (t is None or not spec.tail or t in spec.tail)

    return fits(head, tail) or (spec.symmetric and fits(tail, head))


def _contains(gap: tuple[str, ...], words: tuple[str, ...], whole: bool) -> bool:
    if whole:
        return gap == words
    n = len(words)
    return any(gap[k : k + n] == words for k in range(len(gap) - n + 1))


def make_rel_rules(
    nlp: Language,
    name: str,
    schema: RELSchema | None,
    rules: Sequence[dict[str, Any]] | None,
    rules_path: str | Path | None,
    one_label_per_pair: bool,
) -> RelationRules:
    """Build the rule-based relation extractor from inline ``rules`` and/or a JSONL ``rules_path``."""
    checked = ensure_schema(schema, RELSchema, name)
    component = RelationRules(nlp, name, schema=checked, one_label_per_pair=one_label_per_pair)
    return component.configure(nlp, name, RelationRule, rules, rules_path, "relation rules")


Language.factory(
    "distil_rel_rules",
    assigns=["doc._.relations"],
    requires=["doc.ents"],
    default_config={"schema": None, "rules": None, "rules_path": None, "one_label_per_pair": True},
    default_score_weights={"rel_micro_f": 1.0},
)(make_rel_rules)
