"""CoNLL/IOB reader: IOB1 and IOB2, the 4-column layout, -DOCSTART-, grouping, and counted bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from spacy.vocab import Vocab

from distil.pipeline.io.conll import read_conll
from distil.pipeline.io.conversion_report import ConversionError, ConversionReport

FIXTURES = Path(__file__).parent / "fixtures" / "io"


def ents(docs):
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs]


EXPECTED = [
    [("Alex", "person"), ("New York", "location")],
    [("Apple", "corporation"), ("Banana", "corporation"), ("iPhone X", "product")],
]


def test_iob2_reads_entities_and_text():
    report = ConversionReport()
    docs = list(read_conll(FIXTURES / "iob2.conll", Vocab(), report))
    assert [doc.text for doc in docs] == ["Alex lives in New York .", "Apple Banana made the iPhone X"]
    assert ents(docs) == EXPECTED
    assert report.skipped == 0 and not report.repairs


def test_iob1_gives_the_same_entities_as_iob2():
    report = ConversionReport()
    docs = list(read_conll(FIXTURES / "iob1.conll", Vocab(), report))
    assert ents(docs) == EXPECTED
    # Detected as IOB1: an I- that starts an entity is valid there, not a repair.
    assert not report.repairs


def test_iob1_file_read_as_iob2_counts_repairs_but_keeps_entities():
    report = ConversionReport()
    docs = list(read_conll(FIXTURES / "iob1.conll", Vocab(), report, scheme="iob2"))
    assert ents(docs) == EXPECTED
    assert report.repairs["I- tag without B- in IOB2 (starts an entity)"] == 4


def test_conll2003_four_columns_docstart_and_grouping():
    report = ConversionReport()
    docs = list(read_conll(FIXTURES / "conll2003.txt", Vocab(), report))
    assert [doc.text for doc in docs] == ["EU rejects German call .", "Peter Blackburn", "BRUSSELS 1996-08-22"]
    assert ents(docs) == [[("EU", "ORG"), ("German", "MISC")], [("Peter Blackburn", "PER")], [("BRUSSELS", "LOC")]]
    grouped = list(read_conll(FIXTURES / "conll2003.txt", Vocab(), ConversionReport(), n_sents=10))
    # Grouping never crosses -DOCSTART-: two documents, the first with two sentences.
    assert [doc.text for doc in grouped] == ["EU rejects German call . Peter Blackburn", "BRUSSELS 1996-08-22"]
    assert [sent.text for sent in grouped[0].sents] == ["EU rejects German call .", "Peter Blackburn"]
    assert ents(grouped)[0] == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER")]


def test_malformed_lines_are_counted_with_file_and_line():
    report = ConversionReport()
    path = FIXTURES / "malformed.conll"
    docs = list(read_conll(path, Vocab(), report))
    assert [doc.text for doc in docs] == ["Good line Stray weird", "Next"]
    assert ents(docs) == [[("Stray", "person")], [("Next", "group")]]
    assert report.skips == {"wrong column count": 1, "invalid UTF-8": 1}
    assert report.examples["wrong column count"] == [f"{path}:3 (1 columns, expected 2)"]
    assert report.examples["invalid UTF-8"] == [f"{path}:5 (byte 4)"]
    assert report.repairs == {"I- tag without B- in IOB2 (starts an entity)": 1, "invalid tag read as O": 1}
    assert report.examples["invalid tag read as O"] == [f"{path}:6 ('B-')"]


def test_strict_raises_naming_file_and_line():
    with pytest.raises(ConversionError, match=r"malformed\.conll:3: wrong column count"):
        list(read_conll(FIXTURES / "malformed.conll", Vocab(), ConversionReport(strict=True)))


def test_empty_file_is_a_counted_skip():
    report = ConversionReport()
    assert list(read_conll(FIXTURES / "empty.conll", Vocab(), report)) == []
    assert report.skips == {"empty file": 1}
