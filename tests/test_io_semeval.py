"""SemEval-2010 Task 8 reader: NOMINAL entities, relation direction, Other, ids, and bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from distil.pipeline.io.conversion_report import ConversionError, ConversionReport
from distil.pipeline.io.semeval import make_segmented_doc, read_semeval
from distil.records import META_KEY, to_record

FIXTURES = Path(__file__).parent / "fixtures" / "io"


def test_both_directions_and_other(nlp):
    report = ConversionReport()
    docs = list(read_semeval(FIXTURES / "semeval.txt", nlp, report))
    records = [to_record(doc) for doc in docs]
    assert report.skipped == 0
    assert [r.text for r in records] == [
        "The company fabricates plastic chairs.",
        "The most common audits were about waste and recycling.",
        "The child was wrapped into the cradle's blanket.",
    ]
    assert [r.meta for r in records] == [{"id": "1"}, {"id": "2"}, {"id": "3"}]
    for r in records:
        assert [e.label for e in r.entities] == ["NOMINAL", "NOMINAL"]
    assert [e.text for e in records[0].entities] == ["company", "chairs"]
    # Product-Producer(e2,e1): head is e2 (chairs, index 1), tail is e1.
    assert [(x.head, x.tail, x.label) for x in records[0].relations] == [(1, 0, "Product-Producer")]
    # Message-Topic(e1,e2): head is e1.
    assert [(x.head, x.tail, x.label) for x in records[1].relations] == [(0, 1, "Message-Topic")]
    assert docs[1]._.relations[0].head.text == "audits"
    # Other: no relation; "cradle" is its own token although the tokenizer would split "cradle's" anyway.
    assert records[2].relations == []
    assert [e.text for e in records[2].entities] == ["child", "cradle"]


def test_nominal_inside_a_word_is_still_a_whole_token(nlp):
    doc = make_segmented_doc(nlp, ["The ", "audit", "s were ", "long", "."])
    assert doc.text == "The audits were long."
    audit, long = doc.char_span(4, 9), doc.char_span(16, 20)
    assert audit is not None and audit.text == "audit"
    assert long is not None and long.text == "long"


def test_bad_lines_are_counted(nlp):
    path = FIXTURES / "semeval_malformed.txt"
    report = ConversionReport()
    docs = list(read_semeval(path, nlp, report))
    assert [doc.user_data[META_KEY]["id"] for doc in docs] == ["11"]
    assert [(r.head.text, r.tail.text, r.label) for r in docs[0]._.relations] == [("bird", "flock", "Member-Collection")]
    assert report.skips == {"sentence without exactly one <e1> and one <e2>": 1, "unrecognised line": 1}
    assert report.examples["unrecognised line"] == [f"{path}:5 (this line is junk)"]
    with pytest.raises(ConversionError, match=r"semeval_malformed\.txt:5: unrecognised line"):
        list(read_semeval(path, nlp, ConversionReport(strict=True)))
