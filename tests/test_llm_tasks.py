"""distil's LLM tasks: prompts, answer schemas, grounding, splitting, examples, and what they write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from distil.annotations import EntityPrediction, RelationPrediction, write_entities, write_relations
from distil.components.llm.answers import extract_json
from distil.components.llm.grounding import ground
from distil.components.llm.protocol import AnswerError
from distil.components.llm.splitting import split_doc
from distil.components.llm.tasks import make_ner_task, make_rel_task, make_textcat_task
from distil.pipeline.config import ConfigError
from distil.pipeline.tasks import pipeline_tasks
from distil.schemas import make_ner_schema, make_rel_schema, make_textcat_schema

from .backends import SCHEMA_BLOCKS
from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

NER_SCHEMA = make_ner_schema({"person": "People.", "location": "Places.", "creative-work": "Titles."})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


# --- grounding -----------------------------------------------------------------------


def test_grounding_exact_then_case_then_whitespace() -> None:
    text = "Tim  Cook met tim cook and TIM COOK in\nNew   York."
    assert ground("Tim  Cook", text) == [(0, 9)]
    assert ground("tim cook", text) == [(14, 22)]
    assert ground("new york", text) == [(39, 49)]
    assert ground("Tim Cook", text) == [(14, 22), (27, 35)]  # not exact: case-insensitive matches first
    assert ground("Obama", text) == []
    assert ground("  ", text) == []


def test_grounding_prefers_word_boundaries() -> None:
    assert ground("art", "Bart likes art.") == [(11, 14)]
    assert ground("art", "Bart likes nothing.") == [(1, 4)]


def test_extract_json_tolerates_fences_and_reports_errors() -> None:
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure: {"a": [1]} hope it helps') == {"a": [1]}
    with pytest.raises(AnswerError) as err:
        extract_json('{"a": [1')
    assert err.value.kind == "invalid_json"
    with pytest.raises(AnswerError):
        extract_json("no json here")


# --- splitting -----------------------------------------------------------------------


def test_split_doc_keeps_offsets_and_sentences() -> None:
    nlp = spacy.blank("en")
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = split_doc(nlp.make_doc(text), 120)
    assert len(chunks) > 5
    assert all(len(c.text) <= 120 and text[c.start : c.end] == c.text for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
    assert split_doc(nlp.make_doc("   "), 100) == []
    long_word = "x" * 250
    assert [len(c.text) for c in split_doc(nlp.make_doc(long_word), 100)] == [100, 100, 50]


def test_long_doc_is_split_and_entities_get_doc_offsets(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = load_config_text(
        llm_config("ner", openai_block(server.base_url), task_extra="max_chunk_chars = 80\n"), tmp_path / "a.cfg"
    )
    text = " ".join(f"Today we met Alice Smith at the station number {i}." for i in range(6))
    doc = nlp(text)
    assert len(server.requests) >= 3
    assert [e.text for e in doc.ents] == ["Today", "Alice Smith"] * 6
    assert all(text[e.start_char : e.end_char] == e.text for e in doc.ents)


def test_chunk_size_follows_the_context_length() -> None:
    task = make_ner_task(NER_SCHEMA)
    assert task.chunk_chars(None) is None
    small, large = task.chunk_chars(1024), task.chunk_chars(8192)
    assert small is not None and large is not None and small < large


# --- answer schemas ------------------------------------------------------------------


def test_ner_answer_schema_is_bounded_and_closed() -> None:
    task = make_ner_task(NER_SCHEMA, max_per_label=3, max_mention_chars=20)
    schema = task._json_schema
    assert set(schema["properties"]) == {"person", "location", "creative-work"}
    assert schema["additionalProperties"] is False and "required" not in schema
    assert schema["properties"]["creative-work"]["maxItems"] == 3
    assert schema["properties"]["person"]["items"]["maxLength"] == 20
    with pytest.raises(AnswerError) as err:
        task._parse('{"person": ["a"], "organisation": ["b"]}')
    assert err.value.kind == "schema_violation" and "organisation" in str(err.value)


def test_textcat_answer_schema_exclusive_and_multilabel() -> None:
    exclusive = make_textcat_task(make_textcat_schema(["a_b", "c"]))
    assert exclusive._json_schema["properties"]["label"]["enum"] == ["a_b", "c"]
    assert exclusive._json_schema["required"] == ["label"]
    multi = make_textcat_task(make_textcat_schema(["a_b", "c"], exclusive=False))
    labels = multi._json_schema["properties"]["labels"]
    assert labels["items"]["enum"] == ["a_b", "c"] and labels["maxItems"] == 2


def test_textcat_multilabel_writes_scores(server: FakeOpenAIServer, tmp_path: Path) -> None:
    block = SCHEMA_BLOCKS["textcat"].replace("exclusive = true", "exclusive = false")
    nlp = load_config_text(llm_config("textcat", openai_block(server.base_url), schema_block=block), tmp_path / "a.cfg")
    doc = nlp("hello")
    assert doc.cats == {"lost_or_stolen_card": 1.0, "exchange_rate": 0.0, "top_up": 0.0}


# --- relations ------------------------------------------------------------------------


def test_rel_keeps_text_entities_and_asks_by_index(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = load_config_text(llm_config("rel", openai_block(server.base_url)), tmp_path / "a.cfg")
    doc = nlp.make_doc("Apple hired Tim Cook in Cupertino.")
    write_entities(doc, [EntityPrediction(0, 5, "corporation", 0.7), EntityPrediction(12, 20, "person"),
                         EntityPrediction(24, 33, "location")])
    before = (doc.text, [(e.start_char, e.end_char, e.label_, e._.score) for e in doc.ents])
    doc = nlp(doc)
    assert (doc.text, [(e.start_char, e.end_char, e.label_, e._.score) for e in doc.ents]) == before
    assert [(r.head.text, r.tail.text, r.label) for r in doc._.relations] == [("Apple", "Cupertino", "located_in")]
    prompt = server.requests[0].body["messages"][1]["content"]
    assert 'Entities: [0] "Apple" (corporation); [1] "Tim Cook" (person); [2] "Cupertino" (location)' in prompt
    item = server.requests[0].body["response_format"]["json_schema"]["schema"]["properties"]["relations"]["items"]
    assert item["properties"]["head"]["enum"] == [0, 1, 2]


def test_rel_skips_docs_with_fewer_than_two_entities(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = load_config_text(llm_config("rel", openai_block(server.base_url)), tmp_path / "a.cfg")
    doc = nlp.make_doc("Only Paris here.")
    write_entities(doc, [EntityPrediction(5, 10, "location")])
    assert nlp(doc)._.relations == [] and not server.requests


def test_rel_rejects_out_of_range_index_and_disallowed_types() -> None:
    schema = make_rel_schema({"works_for": {"head": ["person"], "tail": ["corporation"]}})
    task = make_rel_task(schema)
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Tim Cook works at Apple.")
    write_entities(doc, [EntityPrediction(0, 8, "person"), EntityPrediction(18, 23, "corporation")])
    ((request,), _), = list(task.generate_prompts([doc]))
    with pytest.raises(AnswerError, match="refers to entity"):
        request.parse('{"relations": [{"head": 0, "tail": 5, "label": "works_for"}]}')
    with pytest.raises(AnswerError, match="itself"):
        request.parse('{"relations": [{"head": 1, "tail": 1, "label": "works_for"}]}')
    from distil.components.llm.protocol import LLMResponse

    value = request.parse('{"relations": [{"head": 1, "tail": 0, "label": "works_for"}]}')
    write_relations(doc, [RelationPrediction(0, 1, "works_for")])
    (out,) = task.parse_responses([[doc]], [[LLMResponse(request, value=value)]])
    assert out._.relations == [] and task.stats.counts["rejected_relations"] == 1


def test_rel_offers_only_the_types_its_entities_allow_and_asks_nothing_when_none_fits() -> None:
    schema = make_rel_schema({
        "works_for": {"head": ["person"], "tail": ["corporation"]},
        "located_in": {"head": ["corporation"], "tail": ["location"]},
        "created": {"head": ["person"], "tail": ["product"]},
    })
    task = make_rel_task(schema)
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Tim Cook runs Apple in Cupertino.")
    write_entities(doc, [EntityPrediction(0, 8, "person"), EntityPrediction(14, 19, "corporation"),
                         EntityPrediction(23, 32, "location")])
    ((request,), _), = list(task.generate_prompts([doc]))
    labels_listed = request.prompt.split("Text:", 1)[0]
    assert "works_for" in labels_listed and "located_in" in labels_listed and "created" not in labels_listed
    assert request.json_schema["properties"]["relations"]["items"]["properties"]["label"]["enum"] == [
        "works_for", "located_in"]
    # A person and a place: no type in the schema relates them, so the model is not asked.
    lonely = nlp.make_doc("Tim Cook visited Paris.")
    write_entities(lonely, [EntityPrediction(0, 8, "person"), EntityPrediction(17, 22, "location")])
    ((none, _),) = list(task.generate_prompts([lonely]))
    assert list(none) == []


# --- examples, templates, configs -----------------------------------------------------


def test_examples_from_jsonl_and_docbin_render_in_the_prompt(tmp_path: Path) -> None:
    text = "Alice Smith saw Star Wars in Paris."
    record = {"text": text, "entities": [
        {"start": 0, "end": 11, "label": "person", "text": "Alice Smith"},
        {"start": 16, "end": 25, "label": "creative-work", "text": "Star Wars"},
    ]}
    jsonl = tmp_path / "ex.jsonl"
    jsonl.write_text(json.dumps(record) + "\n")
    nlp = spacy.blank("en")
    doc = nlp.make_doc(text)
    person, work = doc.char_span(0, 11, "person"), doc.char_span(16, 25, "creative-work")
    assert person is not None and work is not None
    doc.ents = [person, work]
    DocBin(docs=[doc], store_user_data=True).to_disk(tmp_path / "ex.spacy")
    for path in (jsonl, tmp_path / "ex.spacy"):
        prompt = make_ner_task(NER_SCHEMA, examples=str(path))._prompt("New text.")
        assert f'Text: {text}\nJSON: {{"person":["Alice Smith"],"creative-work":["Star Wars"]}}' in prompt
        assert prompt.endswith("Text: New text.\nJSON:")
        assert prompt.index("- person: People.") < prompt.index(text) < prompt.index("New text.")


def test_bundled_examples_and_unknown_example_labels(tmp_path: Path) -> None:
    assert "Staples Center" in make_ner_task(
        make_ner_schema(["person", "location", "group", "corporation", "creative-work", "product"]),
        examples="distil:ner_wnut17.jsonl",
    )._prompt("x")
    with pytest.raises(ValueError, match=r"few-shot examples distil:ner_wnut17\.jsonl.*'group'"):
        make_ner_task(NER_SCHEMA, examples="distil:ner_wnut17.jsonl")
    with pytest.raises(ValueError, match="few-shot examples file not found"):
        make_ner_task(NER_SCHEMA, examples=str(tmp_path / "missing.jsonl"))


def test_custom_template_is_sandboxed_and_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "t.jinja"
    good.write_text("Labels: {{ labels | map(attribute='name') | join(',') }}\nText: {{ text }}\nJSON:")
    assert make_ner_task(NER_SCHEMA, template=str(good))._prompt("hi") == "Labels: person,location,creative-work\nText: hi\nJSON:"
    evil = tmp_path / "evil.jinja"
    evil.write_text("{{ text.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(Exception, match=r"unsafe|attribute"):
        make_ner_task(NER_SCHEMA, template=str(evil))._prompt("hi")
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% for x in %}")
    with pytest.raises(ValueError, match=r"broken\.jinja, line 1"):
        make_ner_task(NER_SCHEMA, template=str(broken))
    with pytest.raises(ValueError, match="prompt template not found"):
        make_ner_task(NER_SCHEMA, template=str(tmp_path / "nope.jinja"))


def test_task_declares_its_task_and_needs_a_schema(server: FakeOpenAIServer, tmp_path: Path) -> None:
    for task in ("ner", "textcat", "rel"):
        nlp = load_config_text(llm_config(task, openai_block(server.base_url)), tmp_path / f"{task}.cfg")
        assert pipeline_tasks(nlp) == {task: task}
    text = llm_config("ner", openai_block(server.base_url)).replace("schema = ${schemas.ner}\n", "")
    with pytest.raises(ConfigError, match=r"needs a ner schema.*\[schemas\.ner\]"):
        load_config_text(text, tmp_path / "broken.cfg")


def test_closed_mentions_list_the_texts_ngrams_or_fall_back() -> None:
    nlp = spacy.blank("en")
    task = make_ner_task(NER_SCHEMA, closed_mentions=True, max_mention_tokens=2, max_candidates=10)
    doc = nlp.make_doc("Tim Cook, hi!")
    ((request,), _), = list(task.generate_prompts([doc]))
    assert request.json_schema["properties"]["person"]["items"] == {"type": "string", "enum": ["Tim", "Tim Cook", "Cook", "hi"]}
    long_doc = nlp.make_doc(" ".join(f"w{i}" for i in range(20)))
    ((request,), _), = list(task.generate_prompts([long_doc]))
    assert request.json_schema["properties"]["person"]["items"]["maxLength"] == 60
    open_task = make_ner_task(NER_SCHEMA)
    ((request,), _), = list(open_task.generate_prompts([doc]))
    assert "enum" not in request.json_schema["properties"]["person"]["items"]
