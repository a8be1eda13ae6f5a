"""Small workflow steps: convert to raw text, annotate --limit, simulated review, assemble."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

from distil.annotations import EntityPrediction, write_entities
from distil.corpus import write_docs
from distil.pipeline.annotate import annotate, text_key
from distil.pipeline.io.convert import convert
from distil.pipeline.io.texts import read_texts
from distil.pipeline.review import load_records, simulate_review
from distil.records import META_KEY, DocRecord, dumps

from .conftest import distil_cli
from .test_cli_run import CONFIG


def _gold(nlp: Language) -> list:
    docs = []
    for i, text in enumerate(["Apple hired Tim.", "Google bought Fitbit.", "Nothing\nhere."]):
        doc = nlp(text)
        if i < 2:
            write_entities(doc, [EntityPrediction(0, len(text.split()[0]), "ORG")])
        docs.append(doc)
    return docs


def test_convert_to_text_keeps_only_texts(tmp_path: Path, nlp: Language) -> None:
    write_docs(_gold(nlp), tmp_path / "gold.spacy")
    convert(tmp_path / "gold.spacy", tmp_path / "texts.txt", to="text")
    assert (tmp_path / "texts.txt").read_text() == "Apple hired Tim.\nGoogle bought Fitbit.\nNothing here.\n"


def test_annotate_limit_counts_usable_inputs(tmp_path: Path, nlp: Language) -> None:
    path = tmp_path / "in.txt"
    path.write_text("a one\n\nb two\nc three\nd four\n", encoding="utf-8")
    report = annotate(nlp, read_texts(path), tmp_path / "out", limit=2)
    assert report.written == 2 and [r.text for r in load_records(tmp_path / "out")] == ["a one", "b two"]
    again = annotate(nlp, read_texts(path), tmp_path / "out", limit=3)
    assert (again.resumed, again.written) == (2, 1)


def test_simulated_review_replaces_least_confident_with_gold(tmp_path: Path, nlp: Language) -> None:
    gold = _gold(nlp)
    teacher = tmp_path / "teacher"
    teacher.mkdir(parents=True)
    records: list[dict[str, Any]] = [
        {"text": "Apple hired Tim.", "entities": [{"start": 12, "end": 15, "label": "ORG", "text": "Tim", "score": 0.9}]},
        {"text": "Google bought Fitbit.",
         "entities": [{"start": 14, "end": 20, "label": "ORG", "text": "Fitbit", "score": 0.3}]},
        # The teacher was sure this text holds nothing (the probability of its empty answer).
        {"text": "Nothing\nhere.", "entities": [], "meta": {"empty_scores": {"ner": 0.95}}},
    ]
    lines = [
        dumps(DocRecord.model_validate({**r, "meta": {**r.get("meta", {}), "key": text_key(r["text"])}})) + "\n"
        for r in records
    ]
    (teacher / "records.jsonl").write_text("".join(lines))
    summary = simulate_review(teacher, gold, 0.34, tmp_path / "reviewed", nlp)
    assert summary["replaced_by_gold"] == 1
    out = load_records(tmp_path / "reviewed")
    assert [e.text for e in out[1].entities] == ["Google"] and out[1].meta["review"] == "simulated-gold"
    assert [e.text for e in out[0].entities] == ["Tim"] and "reviewed" not in out[0].meta
    assert [e.text for e in load_records(teacher)[1].entities] == ["Fitbit"], "the teacher's directory is untouched"


def test_assemble_saves_a_loadable_pipeline(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    result = subprocess.run([*distil_cli(), "assemble", str(config), str(tmp_path / "nlp"), "--paths.org", "Google"],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert [e.text for e in spacy.load(tmp_path / "nlp")("Apple or Google").ents] == ["Google"]


def test_sample_is_seeded_and_partitions_the_corpus(tmp_path: Path, nlp: Language) -> None:
    from distil.corpus import read_docs
    from distil.pipeline.sample import sample_corpus

    write_docs([nlp(f"doc {i}") for i in range(20)], tmp_path / "all.spacy")
    sample_corpus(tmp_path / "all.spacy", tmp_path / "a.jsonl", 5, seed=3, rest=tmp_path / "rest.jsonl")
    sample_corpus(tmp_path / "all.spacy", tmp_path / "b.jsonl", 5, seed=3)
    sampled = [d.text for d in read_docs(tmp_path / "a.jsonl", nlp)]
    rest = [d.text for d in read_docs(tmp_path / "rest.jsonl", nlp)]
    assert sampled == [d.text for d in read_docs(tmp_path / "b.jsonl", nlp)]
    assert len(sampled) == 5 and sorted(sampled + rest, key=lambda t: int(t.split()[1])) == [f"doc {i}" for i in range(20)]
    assert sampled != [f"doc {i}" for i in range(5)], "a random sample, not the head of the corpus"


def test_sample_exclude_keeps_a_seed_pool_out_of_both_files(tmp_path: Path, nlp: Language) -> None:
    from distil.corpus import read_docs
    from distil.pipeline.sample import sample_corpus

    write_docs([nlp(f"doc {i}") for i in range(20)], tmp_path / "all.spacy")
    # the pool's texts differ in whitespace only: matching collapses it, as retrieval's own exclusion does
    (tmp_path / "pool.jsonl").write_text("".join(f'{{"text": "doc  {i} "}}\n' for i in (2, 7, 11)), encoding="utf-8")
    counts = sample_corpus(tmp_path / "all.spacy", tmp_path / "a.jsonl", 5, seed=3, rest=tmp_path / "rest.jsonl",
                           exclude=str(tmp_path / "pool.jsonl"))
    texts = [d.text for path in ("a.jsonl", "rest.jsonl") for d in read_docs(tmp_path / path, nlp)]
    assert counts == (5, 12, 3)
    assert sorted(texts) == sorted(f"doc {i}" for i in range(20) if i not in (2, 7, 11))


def test_shipped_seed_pools_hold_their_documented_sizes() -> None:
    from collections import Counter

    from distil.components.llm.examples import load_examples

    intents = Counter(max(d.cats, key=d.cats.__getitem__) for d in load_examples("distil:pool_banking77.jsonl"))
    assert len(intents) == 77 and set(intents.values()) == {10}
    for name in ("wnut17", "semeval", "fire"):
        docs = load_examples(f"distil:pool_{name}.jsonl")
        assert len(docs) == 200 and sum(len(d.ents) for d in docs) > 100, name
    assert sum(len(d._.relations) for d in load_examples("distil:pool_fire.jsonl")) > 200


def test_annotate_a_corpus_gives_entities_but_not_gold_relations(tmp_path: Path) -> None:
    from distil.annotations import RelationPrediction, write_cats, write_relations
    from distil.corpus import read_docs
    from distil.pipeline.io.texts import from_docs

    def link_first_two(doc):  # type: ignore[no-untyped-def]
        assert doc._.relations == [] and doc.cats == {}, "gold relations and cats must not reach the pipeline"
        if len(doc.ents) >= 2:
            write_relations(doc, [RelationPrediction(0, 1, "predicted")])
        return doc

    if not Language.has_factory("test_link_first_two"):
        Language.component("test_link_first_two", func=link_first_two)
    nlp = spacy.blank("en")
    nlp.add_pipe("test_link_first_two")
    gold = nlp.make_doc("Apple hired Tim Cook.")
    write_entities(gold, [EntityPrediction(0, 5, "ORG"), EntityPrediction(12, 20, "PERSON")])
    write_relations(gold, [RelationPrediction(1, 0, "gold_label")])
    write_cats(gold, {"tech": 1.0})
    gold.user_data[META_KEY] = {"id": "s1"}
    write_docs([gold], tmp_path / "gold.spacy")
    items = from_docs(read_docs(tmp_path / "gold.spacy", nlp), "gold.spacy")
    annotate(nlp, items, tmp_path / "out")
    [record] = load_records(tmp_path / "out")
    assert [e.text for e in record.entities] == ["Apple", "Tim Cook"]
    assert [(r.head, r.tail, r.label) for r in record.relations] == [(0, 1, "predicted")]
    assert record.cats == {} and record.meta["id"] == "s1"


def test_training_data_from_annotations_keeps_or_weights_reviewed_docs(tmp_path: Path, nlp: Language) -> None:
    import pytest

    from distil.corpus import CorpusError, read_training_docs

    out = tmp_path / "ann"
    out.mkdir()
    rows = [{"text": "a", "meta": {"reviewed": True}}, {"text": "b", "meta": {}}, {"text": "c", "meta": {"reviewed": True}}]
    (out / "records.jsonl").write_text("".join(dumps(DocRecord.model_validate(r)) + "\n" for r in rows))
    assert [d.text for d in read_training_docs(out, nlp)] == ["a", "b", "c"]
    assert [d.text for d in read_training_docs(out, nlp, reviewed_only=True)] == ["a", "c"]
    assert [d.text for d in read_training_docs(out, nlp, reviewed_weight=3)] == ["a", "b", "c", "a", "a", "c", "c"]
    (out / "records.jsonl").write_text(dumps(DocRecord.model_validate(rows[1])) + "\n")
    with pytest.raises(CorpusError, match="no reviewed documents"):
        read_training_docs(out, nlp, reviewed_only=True)
