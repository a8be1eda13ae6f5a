"""Reading raw inputs and running batches: bad lines and bad documents are counted, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from distil.pipeline.batch import DocError, process
from distil.pipeline.io.texts import Skip, TextItem, read_texts
from distil.textfile import InputError


def test_text_file_lines_with_bad_bytes_and_empty_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"first doc\n\n\xff\xfe broken\r\nsecond doc\n   \n")
    items = list(read_texts(path))
    assert [type(i) for i in items] == [TextItem, Skip, Skip, TextItem, Skip]
    first, bad, second = items[0], items[2], items[3]
    assert isinstance(first, TextItem) and isinstance(bad, Skip) and isinstance(second, TextItem)
    assert first.text == "first doc" and second.text == "second doc" and second.line == 4
    assert "invalid UTF-8" in bad.reason and str(bad).startswith(f"{path}:3:")


def test_jsonl_keeps_extra_fields_and_reports_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a doc", "id": 7}\n{"txt": "no"}\n{broken\n{"text": ""}\n', encoding="utf-8")
    items = list(read_texts(path))
    assert isinstance(items[0], TextItem) and items[0].meta == {"id": 7}
    reasons = [i.reason for i in items[1:] if isinstance(i, Skip)]
    assert reasons[0] == "no 'text' field" and reasons[1].startswith("malformed JSON") and reasons[2] == "empty text"


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    # A DistilError (printed without a traceback), raised before any document is read.
    with pytest.raises(InputError, match="input file not found"):
        read_texts(tmp_path / "nope.txt")


def _explode_on_boom(doc: Doc) -> Doc:
    if "boom" in doc.text:
        raise RuntimeError("component failed on this doc")
    return doc


def test_process_isolates_failing_and_oversized_documents() -> None:
    if not Language.has_factory("test_explode"):
        Language.component("test_explode", func=_explode_on_boom)
    nlp = spacy.blank("en")
    nlp.add_pipe("test_explode")
    nlp.max_length = 50
    texts = ["fine one", "boom here", "x" * 60, "fine two"]
    results = list(process(nlp, texts, lambda t: t, batch_size=4))
    assert [item for item, _ in results] == texts
    outcome = [r.text if isinstance(r, Doc) else r.reason for _, r in results]
    assert outcome[0] == "fine one" and outcome[3] == "fine two"
    assert isinstance(results[1][1], DocError) and "component failed" in outcome[1]
    assert "exceeds nlp.max_length" in outcome[2]
