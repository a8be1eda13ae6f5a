"""The swap contract: every backend of a task writes the same kind of Doc and the same record.

Parametrized over the backends registered in ``tests/backends.py`` x the three
tasks. Each backend must produce spaCy-native annotations of the same types,
records that validate against the record schema, and identical records after
DocBin, disk (``nlp.to_disk`` / ``spacy.load``) and JSON record round trips.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

import distil
from distil.annotations import Relation
from distil.corpus import read_docs, write_docs
from distil.pipeline.config import ConfigError
from distil.pipeline.tasks import pipeline_tasks
from distil.records import DocRecord, dumps, from_record, record_json_schema, to_record

from .backends import BUILDERS, EXAMPLES, SCHEMA_LABELS, TASKS, annotate, input_doc

CASES = [pytest.param((backend, task), id=f"{backend}-{task}") for backend in BUILDERS for task in TASKS]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def built(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Language, str]:
    backend, task = request.param
    return BUILDERS[backend](task, tmp_path / "build"), task


def records(docs: list[Doc]) -> list[DocRecord]:
    return [to_record(doc) for doc in docs]


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_declares_its_task(built: tuple[Language, str]) -> None:
    nlp, task = built
    assert task in pipeline_tasks(nlp).values()


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_annotation_types(built: tuple[Language, str]) -> None:
    nlp, task = built
    docs = annotate(nlp, task)
    labels = set(SCHEMA_LABELS[task])
    for doc in docs:
        assert isinstance(doc, Doc)
        for ent in doc.ents:
            assert isinstance(ent, Span)
            score = ent._.score
            assert score is None or isinstance(score, float)
        if task == "ner":
            assert {ent.label_ for ent in doc.ents} <= labels
        if task == "textcat":
            assert set(doc.cats) == labels
            assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in doc.cats.values())
        if task == "rel":
            offsets = [(e.start, e.end) for e in doc.ents]
            for rel in doc._.relations:
                assert isinstance(rel, Relation)
                assert rel.label in labels
                assert (rel.head.start, rel.head.end) in offsets and (rel.tail.start, rel.tail.end) in offsets
                assert rel.score is None or isinstance(rel.score, float)
    # Each backend must actually predict something on these easy inputs.
    if task == "ner":
        assert sum(len(doc.ents) for doc in docs) > 0
    if task == "textcat":
        assert any(max(doc.cats.values()) > 0 for doc in docs)
    if task == "rel":
        assert sum(len(doc._.relations) for doc in docs) > 0
        # The given entities are kept as they were.
        for doc, example in zip(docs, EXAMPLES["rel"], strict=True):
            assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [
                (e["start"], e["end"], e["label"]) for e in example["entities"]
            ]


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_record_validates_against_schema(built: tuple[Language, str]) -> None:
    nlp, task = built
    schema = record_json_schema()
    for doc in annotate(nlp, task):
        record = to_record(doc)
        data = json.loads(dumps(record))
        assert set(data) <= set(schema["properties"])
        assert set(schema["required"]) <= set(data)
        assert DocRecord.model_validate(data) == record


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_docbin_round_trip(built: tuple[Language, str], tmp_path: Path) -> None:
    nlp, task = built
    docs = annotate(nlp, task)
    assert write_docs(docs, tmp_path / "docs.spacy") == len(docs)
    assert records(list(read_docs(tmp_path / "docs.spacy", nlp))) == records(docs)


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_jsonl_and_record_round_trip(built: tuple[Language, str], tmp_path: Path) -> None:
    nlp, task = built
    docs = annotate(nlp, task)
    assert [to_record(from_record(json.loads(dumps(to_record(doc))), nlp)) for doc in docs] == records(docs)
    write_docs(docs, tmp_path / "docs.jsonl")
    assert records(list(read_docs(tmp_path / "docs.jsonl", nlp))) == records(docs)


@pytest.mark.parametrize("built", CASES, indirect=True)
def test_disk_round_trip(built: tuple[Language, str], tmp_path: Path) -> None:
    nlp, task = built
    before = records(annotate(nlp, task))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == nlp.pipe_names
    assert records([loaded(input_doc(loaded, task, ex)) for ex in EXAMPLES[task]]) == before


# --- schema references in the shipped rule configs ------------------------------------------

RULE_CONFIGS = {"ner": "configs/ner_rules.cfg", "textcat": "configs/textcat_rules.cfg", "rel": "configs/rel_rules.cfg"}


@pytest.mark.parametrize("task", TASKS)
def test_config_without_schema_block_names_it(task: str, tmp_path: Path) -> None:
    text = (REPO / RULE_CONFIGS[task]).read_text()
    # Drop the [schemas.<task>] block and its sub-blocks, keep the reference to it.
    stripped = re.sub(rf"\n\[schemas\.{task}(\.[^\]]*)?\]\n(?:(?!\n\[(?!schemas\.{task}[.\]])).)*", "\n", text, flags=re.S)
    assert f"[schemas.{task}]" not in stripped and f"${{schemas.{task}}}" in stripped
    config = tmp_path / "broken.cfg"
    config.write_text(stripped)
    with pytest.raises(ConfigError) as err:
        distil.load(config)
    assert str(config) in str(err.value) and f"schemas.{task}" in str(err.value)


@pytest.mark.parametrize("task", TASKS)
def test_component_without_schema_says_how_to_declare_it(task: str, tmp_path: Path) -> None:
    text = (REPO / RULE_CONFIGS[task]).read_text()
    config = tmp_path / "broken.cfg"
    config.write_text(text.replace(f"schema = ${{schemas.{task}}}\n", ""))
    with pytest.raises(ConfigError, match=rf"needs a {task} schema.*\[schemas\.{task}\]"):
        distil.load(config)
