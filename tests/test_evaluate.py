"""evaluate() on tiny pipelines and handmade gold docs, against hand-computed numbers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import cast

import pytest
import spacy
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from distil.annotations import (
    EntityPrediction,
    Failure,
    RelationPrediction,
    record_failure,
    write_cats,
    write_entities,
    write_relations,
)
from distil.pipeline.evaluate import evaluate
from distil.records import from_record
from distil.schemas import LabelSpec, RelationLabelSpec, RELSchema, TextCatSchema
from distil.scoring import score_categories, score_entities

CAT_LABELS = ["card", "transfer", "other"]
KEYWORDS = {"card": "card", "transfer": "transfer"}


class KeywordCats:
    """A tiny exclusive text classifier: the first keyword found decides, else 'other'."""

    distil_task = "textcat"

    def __init__(self) -> None:
        self.schema = TextCatSchema(labels=tuple(LabelSpec(name=name) for name in CAT_LABELS), exclusive=True)

    def __call__(self, doc: Doc) -> Doc:
        label = next((KEYWORDS[t.lower_] for t in doc if t.lower_ in KEYWORDS), "other")
        return write_cats(doc, {label: 1.0}, self.schema)


class PairRelations:
    """Relations from entity-label pairs in text order; a symmetric 'sibling' is written tail-first."""

    distil_task = "rel"

    def __init__(self) -> None:
        self.schema = RELSchema(labels=(
            RelationLabelSpec(name="works_for", head=("PERSON",), tail=("ORG",)),
            RelationLabelSpec(name="based_in", head=("ORG",), tail=("GPE",)),
            RelationLabelSpec(name="sibling", head=("PERSON",), tail=("PERSON",), symmetric=True),
        ))

    def __call__(self, doc: Doc) -> Doc:
        rules = {("PERSON", "ORG"): "works_for", ("ORG", "GPE"): "based_in", ("PERSON", "PERSON"): "sibling"}
        out = []
        for i, head in enumerate(doc.ents):
            for j in range(i + 1, len(doc.ents)):
                label = rules.get((head.label_, doc.ents[j].label_))
                if label == "sibling":
                    out.append(RelationPrediction(j, i, label, 0.9))
                elif label:
                    out.append(RelationPrediction(i, j, label, 0.9))
        return write_relations(doc, out, self.schema)


class Fragile:
    """Raises on 'CRASH' and records a failure on '???', like a backend that meets bad input."""

    def __call__(self, doc: Doc) -> Doc:
        if "CRASH" in doc.text:
            raise ValueError("cannot handle CRASH")
        if "???" in doc.text:
            record_failure(doc, Failure("fragile", "ner", "invalid_json", "model answered '???'"))
        return doc


@Language.factory("test_eval_keyword_cats")
def _make_cats(nlp: Language, name: str) -> KeywordCats:
    return KeywordCats()


@Language.factory("test_eval_pair_relations")
def _make_rel(nlp: Language, name: str) -> PairRelations:
    return PairRelations()


@Language.factory("test_eval_fragile")
def _make_fragile(nlp: Language, name: str) -> Fragile:
    return Fragile()


def ner_textcat_pipeline() -> Language:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([  # type: ignore[attr-defined]
        {"label": "PERSON", "pattern": "Tim Cook"},
        {"label": "ORG", "pattern": "Apple"},
        {"label": "GPE", "pattern": "Berlin"},
    ])
    nlp.add_pipe("test_eval_keyword_cats", name="textcat")
    return nlp


def rel_pipeline() -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("test_eval_pair_relations", name="rel")
    return nlp


def gold(text: str, ents: Iterable[tuple[str, str]] = (), rels: Iterable[tuple[int, int, str]] = (),
         cats: dict[str, float] | None = None, doc_id: str | None = None) -> Doc:
    """A gold Doc from a record, tokenised on whitespace (not as the pipeline tokenises)."""
    entities = []
    for surface, label in ents:
        start = text.index(surface)
        entities.append({"start": start, "end": start + len(surface), "label": label, "text": surface})
    record = {
        "text": text,
        "entities": entities,
        "relations": [{"head": h, "tail": t, "label": label} for h, t, label in rels],
        "cats": cats or {},
        "meta": {"id": doc_id} if doc_id else {},
    }
    return from_record(record, spacy.blank("en").vocab)


def one_hot(label: str) -> dict[str, float]:
    return {name: float(name == label) for name in CAT_LABELS}


NER_GOLD = [
    gold("Tim Cook lost his card in Berlin .", [("Tim Cook", "PERSON"), ("Berlin", "GPE")], cats=one_hot("card")),
    gold("Apple wants a transfer from Paris .", [("Apple", "ORG"), ("Paris", "GPE")], cats=one_hot("transfer")),
    gold("Apple pie and a card .", [], cats=one_hot("transfer")),
]


def test_entities_and_categories_hand_computed():
    report = evaluate(ner_textcat_pipeline(), NER_GOLD)
    s = report.scores
    # Entities: tp 3 (Tim Cook, Berlin, Apple in doc 2), fp 1 (Apple pie), fn 1 (Paris).
    assert (s["ents_p"], s["ents_r"], s["ents_f"]) == pytest.approx((0.75, 0.75, 0.75))
    assert s["ents_per_type"]["PERSON"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert s["ents_per_type"]["GPE"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert s["ents_per_type"]["ORG"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    # Categories: docs 1 and 2 right, doc 3 gold transfer predicted card.
    assert s["cats_accuracy"] == pytest.approx(2 / 3)
    assert s["cats_f_per_type"]["card"] == pytest.approx({"p": 0.5, "r": 1.0, "f": 2 / 3})
    assert s["cats_f_per_type"]["transfer"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})
    assert s["cats_f_per_type"]["other"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})
    assert (s["cats_macro_p"], s["cats_macro_r"], s["cats_macro_f"]) == pytest.approx((0.5, 0.5, 4 / 9))
    assert s["cats_micro_f"] == pytest.approx(2 / 3)
    assert report.components == {"entity_ruler": "ner", "textcat": "textcat"}
    assert report.gold_entities is False
    assert "rel_micro_f" not in s
    assert report.n_docs == 3 and report.failed_docs == []
    # Words are counted on the pipeline's tokens: "." is split off, so 8 + 7 + 6.
    assert report.n_words == 21
    assert report.speed["docs_per_second"] > 0 and report.speed["words_per_second"] > 0


def test_category_scores_match_spacy_scorer():
    nlp = ner_textcat_pipeline()
    pairs = [(nlp(g.text), g) for g in NER_GOLD]
    ours = score_categories(pairs, CAT_LABELS, exclusive=True)
    examples = [Example(nlp(g.text), nlp.make_doc(g.text)) for g in NER_GOLD]
    for example, g in zip(examples, NER_GOLD, strict=True):
        example.reference.cats = dict(g.cats)
    spacy_scores = Scorer.score_cats(examples, "cats", labels=CAT_LABELS, multi_label=False)
    for key in ("cats_micro_p", "cats_micro_r", "cats_micro_f", "cats_macro_p", "cats_macro_r", "cats_macro_f"):
        assert ours[key] == pytest.approx(spacy_scores[key]), key
    for label in CAT_LABELS:
        assert ours["cats_f_per_type"][label] == pytest.approx(spacy_scores["cats_f_per_type"][label]), label


def test_multilabel_categories_use_threshold_and_exact_match_accuracy():
    nlp = spacy.blank("en")
    g1, g2 = nlp.make_doc("a"), nlp.make_doc("b")
    g1.cats, g2.cats = {"x": 1.0, "y": 1.0}, {"x": 0.0, "y": 1.0}
    p1, p2 = nlp.make_doc("a"), nlp.make_doc("b")
    p1.cats, p2.cats = {"x": 0.7, "y": 0.6}, {"x": 0.6, "y": 0.9}
    scores = score_categories([(p1, g1), (p2, g2)], ["x", "y"], exclusive=False, threshold=0.65)
    # threshold 0.65: doc 1 predicts {x} (misses y), doc 2 predicts {y}: exact match 1 of 2.
    assert scores["cats_accuracy"] == pytest.approx(0.5)
    assert scores["cats_f_per_type"]["x"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert scores["cats_f_per_type"]["y"] == pytest.approx({"p": 1.0, "r": 0.5, "f": 2 / 3})


def test_exclusive_doc_without_prediction_is_a_miss_not_a_crash():
    nlp = spacy.blank("en")
    g, p = nlp.make_doc("a"), nlp.make_doc("a")
    g.cats = {"x": 1.0, "y": 0.0}
    scores = score_categories([(p, g)], ["x", "y"], exclusive=True)
    assert scores["cats_accuracy"] == 0.0
    assert scores["cats_f_per_type"]["x"]["r"] == 0.0


def test_exclusive_all_zero_scores_abstain_instead_of_predicting_the_first_label():
    nlp = spacy.blank("en")
    g1, g2, p1, p2 = (nlp.make_doc(t) for t in "abab")
    g1.cats, g2.cats = {"x": 0.0, "y": 1.0}, {"x": 1.0, "y": 0.0}
    p1.cats, p2.cats = {"x": 0.0, "y": 0.0}, {"x": 0.8, "y": 0.2}
    scores = score_categories([(p1, g1), (p2, g2)], ["x", "y"], exclusive=True)
    assert scores["cats_accuracy"] == pytest.approx(0.5)
    # x is never predicted wrongly: P 1; y is missed: R 0; micro P 1/1, R 1/2.
    assert scores["cats_f_per_type"]["x"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert scores["cats_micro_p"] == pytest.approx(1.0)
    assert scores["cats_micro_r"] == pytest.approx(0.5)


def test_entities_align_across_tokenisations():
    nlp = ner_textcat_pipeline()
    # Gold with "Tim Cook" as one token and "Berlin." not split: alignment by characters still matches.
    g = Doc(nlp.vocab, words=["Tim Cook", "visited", "Berlin", "."], spaces=[True, True, False, False])
    write_entities(g, [EntityPrediction(0, 8, "PERSON"), EntityPrediction(17, 23, "GPE")])
    scores = score_entities([(nlp(g.text), g)])
    assert scores["ents_f"] == pytest.approx(1.0)


REL_GOLD = [
    gold("Tim Cook works for Apple in Cupertino .", [("Tim Cook", "PERSON"), ("Apple", "ORG"), ("Cupertino", "GPE")],
         rels=[(0, 1, "works_for"), (1, 2, "based_in")]),
    gold("Apple hired Anna .", [("Apple", "ORG"), ("Anna", "PERSON")], rels=[(1, 0, "works_for")]),
    # Gold stores the symmetric relation Ben -> Anna; the component writes Anna -> Ben.
    gold("Anna and Ben are siblings .", [("Anna", "PERSON"), ("Ben", "PERSON")], rels=[(1, 0, "sibling")]),
]


def test_relation_pipeline_gets_gold_entities_and_symmetric_labels_match():
    report = evaluate(rel_pipeline(), REL_GOLD)
    s = report.scores
    assert report.gold_entities is True
    assert any("gold entities" in note for note in report.notes)
    assert "ents_f" not in s
    # works_for: tp 1, fn 1 (Anna -> Apple not found); based_in tp 1; sibling tp 1 (order ignored).
    assert (s["rel_micro_p"], s["rel_micro_r"], s["rel_micro_f"]) == pytest.approx((1.0, 0.75, 6 / 7))
    assert (s["rel_macro_p"], s["rel_macro_r"], s["rel_macro_f"]) == pytest.approx((1.0, 5 / 6, 8 / 9))
    assert s["rel_per_type"]["sibling"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})


def test_relation_pipeline_without_gold_entities_finds_nothing():
    report = evaluate(rel_pipeline(), REL_GOLD, gold_entities=False)
    assert report.gold_entities is False
    assert report.scores["rel_micro_r"] == 0.0


def test_semeval_official_through_evaluate():
    golds = [
        gold("Tim Cook joined Apple .", [("Tim Cook", "PERSON"), ("Apple", "ORG")], rels=[(0, 1, "works_for")]),
        gold("Apple hired Anna .", [("Apple", "ORG"), ("Anna", "PERSON")], rels=[(1, 0, "works_for")]),
        gold("Anna met Apple .", [("Anna", "PERSON"), ("Apple", "ORG")]),
        gold("Tim Cook works for Apple in Cupertino .", [("Tim Cook", "PERSON"), ("Apple", "ORG"),
             ("Cupertino", "GPE")], rels=[(0, 1, "works_for")]),
    ]
    report = evaluate(rel_pipeline(), golds, semeval_official=True)
    s = report.scores
    # Answers: works_for(e1,e2) right; works_for(e2,e1) -> Other; Other -> works_for(e1,e2).
    # works_for: P 1/2, R 1/2, F 1/2; the 3-entity doc is skipped.
    assert s["rel_semeval_docs"] == 3
    assert (s["rel_semeval_macro_p"], s["rel_semeval_macro_r"], s["rel_semeval_macro_f"]) == pytest.approx(
        (0.5, 0.5, 0.5)
    )
    assert any("1 doc(s)" in note for note in report.notes)


def test_failing_docs_are_counted_and_scored_as_empty():
    nlp = ner_textcat_pipeline()
    nlp.add_pipe("test_eval_fragile")
    golds = [
        gold("Tim Cook lost his card in Berlin .", [("Tim Cook", "PERSON"), ("Berlin", "GPE")], cats=one_hot("card")),
        gold("Tim Cook said CRASH .", [("Tim Cook", "PERSON")], cats=one_hot("other"), doc_id="s2"),
        gold("Apple ??? .", [("Apple", "ORG")], cats=one_hot("other")),
    ]
    report = evaluate(nlp, golds, batch_size=8)
    assert [(f.index, f.id) for f in report.failed_docs] == [(1, "s2")]
    assert "CRASH" in report.failed_docs[0].reason
    assert report.failures == {"invalid_json": 1}
    # The crashed doc's gold entity is a miss: 3 of 4 gold entities found, no false positive.
    assert report.scores["ents_r"] == pytest.approx(0.75)
    assert report.scores["ents_p"] == pytest.approx(1.0)
    # ...and its category too: docs 1 and 3 right, doc 2 has no prediction.
    assert report.scores["cats_accuracy"] == pytest.approx(2 / 3)
    data = report.to_dict()
    assert data["n_failed_docs"] == 1 and data["failed_docs"][0]["id"] == "s2"


def test_tasks_without_gold_annotations_are_not_scored():
    # Gold with entities only: the textcat component's output cannot be judged, so it is not scored.
    golds = [gold("Tim Cook lost his card .", [("Tim Cook", "PERSON")])]
    report = evaluate(ner_textcat_pipeline(), golds)
    assert report.scores["ents_f"] == pytest.approx(1.0)
    assert "cats_macro_f" not in report.scores
    assert any("no categories" in note for note in report.notes)


def test_report_is_json_serialisable():
    data = evaluate(ner_textcat_pipeline(), NER_GOLD).to_dict()
    parsed = json.loads(json.dumps(data))
    assert parsed["tasks"] == ["ner", "textcat"]
    assert set(parsed["speed"]) == {"seconds", "docs_per_second", "words_per_second"}
    assert parsed["scores"]["ents_f"] == pytest.approx(0.75)


def test_empty_gold_and_taskless_pipeline_are_errors():
    with pytest.raises(ValueError, match="empty"):
        evaluate(ner_textcat_pipeline(), [])
    with pytest.raises(ValueError, match="no component"):
        evaluate(spacy.blank("en"), NER_GOLD)



class _CountingComponent:
    """Records how documents reach it: 1 per nlp(doc) call, the batch size per pipe() call."""

    distil_task = "ner"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, doc: Doc) -> Doc:
        self.calls.append(1)
        return doc

    def pipe(self, docs, batch_size: int = 128):  # type: ignore[no-untyped-def]
        batch = list(docs)
        self.calls.append(len(batch))
        return batch


def test_latency_docs_run_one_at_a_time_and_are_not_rerun() -> None:
    if not Language.has_factory("test_latency_counter"):
        Language.factory("test_latency_counter", func=lambda nlp, name: _CountingComponent())
    nlp = spacy.blank("en")
    counter = cast(_CountingComponent, nlp.add_pipe("test_latency_counter"))
    golds = [nlp.make_doc(f"text {i}") for i in range(10)]
    # One timed run and no warm-up (the default times repeated runs after a warm-up: tests/test_cli_numbers.py).
    report = evaluate(nlp, golds, latency_docs=3, batch_size=64, gold_entities=False, repeats=1, warmup_docs=0,
                      min_run_seconds=0.0)
    assert sum(counter.calls) == 10, "every document runs exactly once"
    assert counter.calls[-1] == 7, "the rest goes through in one batch"
    assert report.speed["latency_docs"] == 3 and report.speed["p95_latency_ms"] > 0
    assert report.n_docs == 10
