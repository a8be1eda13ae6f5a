"""Relations end to end: strict scoring (spans, entity types, label) and the same documents with gold entities given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
from spacy.tokens import Doc

from distil.annotations import EntityPrediction, RelationPrediction, write_entities, write_relations
from distil.scoring import score_relations

NLP = spacy.blank("en")
TEXT = "Tim Cook runs Apple in Cupertino ."


def doc_with(entities: list[tuple[int, int, str]], relations: list[tuple[int, int, str]]) -> Doc:
    doc = NLP.make_doc(TEXT)
    write_entities(doc, [EntityPrediction(start, end, label) for start, end, label in entities])
    write_relations(doc, [RelationPrediction(head, tail, label) for head, tail, label in relations])
    return doc


GOLD = doc_with([(0, 8, "person"), (14, 19, "corporation")], [(0, 1, "works_for")])


def test_a_wrong_entity_span_makes_the_relation_wrong() -> None:
    # NER found "Cook" instead of "Tim Cook": the relation between the right types is still wrong, end to end.
    predicted = doc_with([(4, 8, "person"), (14, 19, "corporation")], [(0, 1, "works_for")])
    scores = score_relations([(predicted, GOLD)])
    assert scores["rel_micro_p"] == 0.0 and scores["rel_micro_r"] == 0.0
    assert scores["rel_strict_micro_f"] == 0.0
    assert scores["rel_per_type"]["works_for"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})


def test_strict_scoring_also_needs_the_entity_types() -> None:
    # Right spans, right relation label, but the tail typed "location": right by spans, wrong when strict.
    predicted = doc_with([(0, 8, "person"), (14, 19, "location")], [(0, 1, "works_for")])
    scores = score_relations([(predicted, GOLD)])
    assert scores["rel_micro_f"] == pytest.approx(1.0)
    assert scores["rel_strict_micro_f"] == 0.0
    right = doc_with([(0, 8, "person"), (14, 19, "corporation")], [(0, 1, "works_for")])
    assert score_relations([(right, GOLD)])["rel_strict_micro_f"] == pytest.approx(1.0)


def test_strict_scoring_keeps_types_with_their_span_for_symmetric_labels() -> None:
    gold = doc_with([(0, 8, "person"), (14, 19, "corporation")], [(0, 1, "related")])
    swapped = doc_with([(0, 8, "person"), (14, 19, "corporation")], [(1, 0, "related")])
    scores = score_relations([(swapped, gold)], symmetric={"related"})
    assert scores["rel_strict_micro_f"] == pytest.approx(1.0)


@pytest.mark.slow
def test_evaluate_reports_relations_with_gold_entities_given(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import distil
    from distil.corpus import read_docs
    from distil.pipeline.evaluate import evaluate

    from .backends import SCHEMA_BLOCKS
    from .encoder_support import corpus, trained

    ner, rel = trained("ner"), trained("rel")

    def pipeline(names: list[str]) -> Any:
        blocks = {
            "ner": '[components.ner]\nfactory = "distil_ner_encoder"\nmodel = ${paths.ner_model}\n'
                   'schema = ${schemas.ner}\nprecision = "fp32"\n\n',
            "rel": '[components.rel]\nfactory = "distil_rel_encoder"\nmodel = ${paths.rel_model}\n'
                   'schema = ${schemas.rel}\nprecision = "fp32"\n',
        }
        text = (
            f'[paths]\nner_model = "{ner.as_posix()}"\nrel_model = "{rel.as_posix()}"\n\n[nlp]\nlang = "en"\n'
            f'pipeline = {json.dumps(names)}\n\n[schemas]\n{SCHEMA_BLOCKS["ner"]}\n{SCHEMA_BLOCKS["rel"]}\n'
            "[components]\n\n" + "".join(blocks[name] for name in names)
        )
        config = tmp_path / f"{'_'.join(names)}.cfg"
        config.write_text(text, encoding="utf-8")
        return distil.load(config)

    nlp = pipeline(["ner", "rel"])
    _, dev = corpus("rel", tmp_path / "data")
    options: dict[str, Any] = {"repeats": 1, "warmup_docs": 0, "min_run_seconds": 0.0}
    report = evaluate(nlp, read_docs(dev, nlp), **options)
    assert not report.gold_entities
    for key in ("ents_f", "rel_micro_f", "rel_strict_micro_f", "rel_gold_ents_micro_f", "rel_gold_ents_per_type"):
        assert key in report.scores, key
    assert any("rel_gold_ents_" in note for note in report.notes)
    from distil.pipeline.cli.evaluate import format_report

    shown = format_report(report)
    assert "strict micro (spans + entity types)" in shown and "micro, gold entities given" in shown
    # The gold-entity figures are what the relation component alone scores on the same documents.
    alone = evaluate(pipeline(["rel"]), read_docs(dev, nlp), **options)
    assert alone.gold_entities
    assert report.scores["rel_gold_ents_micro_f"] == pytest.approx(alone.scores["rel_micro_f"])
    # compare ranks an end-to-end pipeline by the strict figure, a relation-only one by its relation micro-F.
    from distil.pipeline.compare import rows_of

    (_, e2e_row) = rows_of("e2e", nlp, report)
    assert e2e_row.metric == "rel_strict_micro_f" and e2e_row.score == report.scores["rel_strict_micro_f"]
    assert e2e_row.p == report.scores["rel_strict_micro_p"]
    (alone_row,) = rows_of("alone", pipeline(["rel"]), alone)
    assert alone_row.metric == "rel_micro_f"
    # Asked not to, evaluate skips the second pass.
    skipped = evaluate(nlp, read_docs(dev, nlp), rel_gold_entities=False, **options)
    assert "rel_gold_ents_micro_f" not in skipped.scores
