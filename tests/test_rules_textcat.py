"""``distil_textcat_rules``: keyword/phrase/regex/token-pattern rules scored per schema label."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.language import Language

import distil
from distil.components.rules.rule_files import RuleFileError
from distil.pipeline.config import ConfigError
from distil.schemas import SchemaError

from .backends import write_jsonl


def component(nlp: Language, name: str) -> Any:
    """A pipeline component by name, typed loosely for attribute access."""
    return nlp.get_pipe(name)


REPO = Path(__file__).resolve().parent.parent
LABELS = ["lost_card", "exchange_rate", "top_up"]
RULES: list[dict[str, Any]] = [
    {"label": "lost_card", "keyword": ["lost", "stolen"], "weight": 2.0},
    {"label": "exchange_rate", "phrase": "exchange rate"},
    {"label": "exchange_rate", "regex": r"\beuros?\b", "weight": 0.5},
    {"label": "top_up", "pattern": [{"LOWER": "top"}, {"LOWER": "up"}]},
]


def make(rules: list[dict[str, Any]] | None = None, exclusive: bool = True, **config: Any) -> Language:
    nlp = spacy.blank("en")
    schema = {"@misc": "distil.TextCatSchema.v1", "labels": LABELS, "exclusive": exclusive}
    nlp.add_pipe("distil_textcat_rules", name="textcat", config={"schema": schema, "rules": rules, **config})
    return nlp


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("My card was STOLEN", "lost_card"),
        ("what is the exchange rate", "exchange_rate"),
        ("paid in Euros", "exchange_rate"),
        ("please top up my account", "top_up"),
    ],
)
def test_each_rule_kind_fires(text: str, label: str) -> None:
    cats = make(RULES)(text).cats
    assert set(cats) == set(LABELS)
    assert cats[label] == 1.0 and sum(cats.values()) == pytest.approx(1.0)


def test_exclusive_scores_are_normalised_evidence() -> None:
    cats = make(RULES)("I lost my card, the exchange rate in euros was bad").cats
    # lost_card 2.0, exchange_rate 1.0 + 0.5 -> 2/3.5 and 1.5/3.5
    assert cats == pytest.approx({"lost_card": 2 / 3.5, "exchange_rate": 1.5 / 3.5, "top_up": 0.0})


def test_a_rule_fires_once_per_doc() -> None:
    cats = make(RULES)("lost lost lost stolen, exchange rate").cats
    assert cats["lost_card"] == pytest.approx(2 / 3)


def test_no_evidence_gives_zeros_default_label_or_prior() -> None:
    assert set(make(RULES)("hello").cats.values()) == {0.0}
    assert make(RULES, default_label="top_up")("hello").cats == {"lost_card": 0.0, "exchange_rate": 0.0, "top_up": 1.0}
    assert make(RULES, prior=0.1)("hello").cats == pytest.approx(dict.fromkeys(LABELS, 1 / 3))
    smoothed = make(RULES, prior=0.1)("lost").cats
    assert smoothed["lost_card"] == pytest.approx(2.1 / 2.3) and smoothed["top_up"] == pytest.approx(0.1 / 2.3)


def test_multilabel_scores_combine_by_noisy_or() -> None:
    rules = [
        {"label": "lost_card", "keyword": "lost", "weight": 0.5},
        {"label": "lost_card", "keyword": "card", "weight": 0.5},
        {"label": "top_up", "phrase": "top up", "weight": 0.4},
    ]
    nlp = make(rules, exclusive=False)
    cats = nlp("lost card, top up").cats
    assert cats == pytest.approx({"lost_card": 0.75, "exchange_rate": 0.0, "top_up": 0.4})
    assert component(nlp, "textcat").schema.predicted(cats) == ["lost_card"]


def test_multilabel_weight_above_one_is_rejected() -> None:
    with pytest.raises(RuleFileError, match=r"weights \[2\.0\] exceed 1\.0.*noisy-OR"):
        make(RULES, exclusive=False)


def test_unknown_label_is_a_schema_error_naming_it() -> None:
    with pytest.raises(SchemaError, match=r"'lost_crad'"):
        make([{"label": "lost_crad", "keyword": "lost"}])
    with pytest.raises(SchemaError, match=r"default_label.*'nope'"):
        make(RULES, default_label="nope")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"label": "top_up"}, "exactly one of keyword, phrase, regex, pattern"),
        ({"label": "top_up", "keyword": "top", "regex": "x"}, "exactly one of"),
        ({"label": "top_up", "keyword": "top up"}, "must be one word; use 'phrase'"),
        ({"label": "top_up", "regex": "(unclosed"}, "does not compile"),
        ({"label": "top_up", "keyword": "top", "weight": 0}, "weight"),
        ({"label": "top_up", "keyword": "top", "wieght": 1}, "wieght"),
    ],
)
def test_invalid_rule_line_names_file_and_line(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [RULES[0], rule])
    with pytest.raises(RuleFileError, match=rf"r\.jsonl:2: .*{message}"):
        make(rules_path=str(path))


def test_invalid_token_pattern_is_reported() -> None:
    with pytest.raises(RuleFileError, match="invalid token pattern"):
        make([{"label": "top_up", "pattern": [{"NOT_AN_ATTR": "x"}]}])


def test_saved_pipeline_holds_rules_without_the_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rules" / "r.jsonl", RULES)
    nlp = make(rules_path=str(path), prior=0.01)
    texts = ["I lost my card", "exchange rate in euros", "top up", "nothing"]
    before = [nlp(t).cats for t in texts]
    nlp.to_disk(tmp_path / "model")
    shutil.rmtree(tmp_path / "rules")
    loaded = spacy.load(tmp_path / "model")
    assert [loaded(t).cats for t in texts] == before
    copy = make(prior=0.01)
    component(copy, "textcat").from_bytes(component(nlp, "textcat").to_bytes())
    assert [copy(t).cats for t in texts] == before


def test_rules_file_missing_in_config_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"textcat rules file not found: .*missing\.jsonl"):
        distil.load(REPO / "configs/textcat_rules.cfg", {"paths.textcat_rules": str(tmp_path / "missing.jsonl")})


def test_shipped_banking77_config() -> None:
    nlp = distil.load(REPO / "configs/textcat_rules.cfg")
    labels = json.loads((REPO.parent / "shared/data/banking77/categories.json").read_text()) if (
        REPO.parent / "shared/data/banking77/categories.json").exists() else None
    schema = component(nlp, "textcat").schema
    assert schema.exclusive and len(schema.label_names) == 77
    if labels is not None:
        assert list(schema.label_names) == labels
    cats = nlp("I lost my card yesterday, please block it.").cats
    assert len(cats) == 77 and math.isclose(sum(cats.values()), 1.0)
    assert schema.predicted(cats) == ["lost_or_stolen_card"]
    cats = nlp("What exchange rate will I get?").cats
    assert schema.predicted(cats) == ["exchange_rate"]
