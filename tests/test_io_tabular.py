"""CSV ``text,label`` reader: header detection, quoting, label sets, and counted bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from distil.pipeline.io.conversion_report import ConversionError, ConversionReport
from distil.pipeline.io.tabular import read_csv, read_label_set

FIXTURES = Path(__file__).parent / "fixtures" / "io"


def test_header_quotes_and_commas_inside_text(nlp):
    report = ConversionReport()
    docs = list(read_csv(FIXTURES / "intents.csv", nlp, report))
    assert [doc.text for doc in docs] == [
        "How do I locate my card?",
        "I still have not received my new card, I ordered over a week ago.",
        'She said "hello", then left',
        "What is the exchange rate?",
    ]
    # Without a label file the label set is the labels seen, in order of appearance, one-hot.
    assert docs[1].cats == {"card_arrival": 1.0, "greeting": 0.0, "exchange_rate": 0.0}
    assert docs[2].cats == {"card_arrival": 0.0, "greeting": 1.0, "exchange_rate": 0.0}
    assert report.skipped == 0 and report.docs == 0  # the reader does not count docs; convert() does


def test_label_file_gives_every_label(nlp):
    labels = read_label_set(FIXTURES / "labels.json")
    docs = list(read_csv(FIXTURES / "intents.csv", nlp, ConversionReport(), labels=labels))
    assert list(docs[0].cats) == ["card_arrival", "exchange_rate", "greeting", "lost_or_stolen_card"]
    assert docs[3].cats == {"card_arrival": 0.0, "exchange_rate": 1.0, "greeting": 0.0, "lost_or_stolen_card": 0.0}


def test_no_header_uses_first_two_columns(nlp):
    docs = list(read_csv(FIXTURES / "noheader.csv", nlp, ConversionReport()))
    assert [doc.text for doc in docs] == ["How do I locate my card?", "What is the exchange rate?"]
    assert docs[0].cats == {"card_arrival": 1.0, "exchange_rate": 0.0}


def test_configurable_columns(nlp, tmp_path):
    path = tmp_path / "renamed.csv"
    path.write_text("id,intent_name,utterance\n1,greeting,hi there\n2,goodbye,see you\n", encoding="utf-8")
    docs = list(read_csv(path, nlp, ConversionReport(), text_column="utterance", label_column="intent_name"))
    assert [(doc.text, max(doc.cats, key=lambda label: doc.cats[label])) for doc in docs] == [("hi there", "greeting"), ("see you", "goodbye")]
    with pytest.raises(ConversionError, match="no label column 'nope'"):
        list(read_csv(path, nlp, ConversionReport(), text_column="utterance", label_column="nope"))


def test_bad_rows_are_counted_with_file_and_line(nlp):
    path = FIXTURES / "malformed.csv"
    report = ConversionReport()
    docs = list(read_csv(path, nlp, report, labels=read_label_set(FIXTURES / "labels.json")))
    assert [doc.text for doc in docs] == ["fine row", "last row"]
    assert report.skips == {
        "wrong column count": 1,
        "empty text": 1,
        "invalid UTF-8": 1,
        "label not in the label set": 1,
    }
    assert report.examples["wrong column count"] == [f"{path}:3 (3 columns, expected 2)"]
    assert report.examples["invalid UTF-8"] == [f"{path}:5 (byte 4)"]
    assert report.examples["label not in the label set"] == [f"{path}:6 ('not_a_label')"]
    with pytest.raises(ConversionError, match=r"malformed\.csv:3: wrong column count"):
        list(read_csv(path, nlp, ConversionReport(strict=True)))


def test_label_file_errors(tmp_path):
    bad = tmp_path / "labels.json"
    bad.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(ConversionError, match="expected a JSON list"):
        read_label_set(bad)
    with pytest.raises(ConversionError, match="label file not found"):
        read_label_set(tmp_path / "missing.json")
