"""The encoder's input encoding: word chunks, BIO decoding, typed markers, candidate pairs (no torch)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from distil.components.encoder.alignment import (
    bio_classes,
    decode_bio,
    encode_words,
    length_sorted_batches,
    load_tokenizer,
    pad_batch,
    word_chunks,
)
from distil.components.encoder.markers import Mention, candidate_pairs, encode_pair, mark_pair
from distil.schemas import make_rel_schema


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    from .encoder_support import minilm_path

    return load_tokenizer(str(Path(minilm_path()) / "tokenizer.json"))


def test_word_chunks_fit_the_budget_and_cover_every_word() -> None:
    counts = [3, 1, 4, 1, 5, 9, 2, 6]
    chunks = word_chunks(counts, 8)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
    for start, end in chunks:
        assert sum(counts[start:end]) <= 8 or end - start == 1


def test_long_documents_are_chunked_without_losing_words(tokenizer: Tokenizer) -> None:
    words = ["Antidisestablishmentarianism", "in", "Paris", "\n", "is", "old"] * 30
    pieces = encode_words(tokenizer, words, max_length=32)
    assert len(pieces) > 1
    assert all(len(piece.ids) <= 32 for piece in pieces)
    covered = [piece.word_start + i for piece in pieces for i, pos in enumerate(piece.first_token) if pos >= 0]
    # Every word but the whitespace ones has a first sub-word, in order.
    assert covered == [i for i, w in enumerate(words) if w.strip()]
    first = pieces[0]
    assert tokenizer.id_to_token(first.ids[first.first_token[2]]) == "paris"


def test_decode_bio_spans_and_scores() -> None:
    tags = ["B-person", "I-person", "O", "I-location", "B-location", "B-location", "I-person"]
    scores = [0.9, 0.7, 1.0, 0.6, 0.8, 0.5, 0.4]
    spans = decode_bio(tags, scores)
    assert [(s, e, label) for s, e, label, _ in spans] == [
        (0, 2, "person"), (3, 4, "location"), (4, 5, "location"), (5, 6, "location"), (6, 7, "person"),
    ]
    assert spans[0][3] == pytest.approx(0.8)
    assert bio_classes(["a", "b"]) == ["O", "B-a", "I-a", "B-b", "I-b"]


def test_padding_and_length_sorted_batches() -> None:
    ids, mask = pad_batch([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    batches = length_sorted_batches([5, 1, 3, 2], 2)
    assert batches == [[1, 3], [2, 0]]


def test_typed_markers_point_at_the_opening_marker(tokenizer: Tokenizer) -> None:
    text = "The fire was caused by a spark."
    fire, spark = Mention(4, 8, "NOMINAL"), Mention(25, 30, "NOMINAL")
    marked, head, tail = mark_pair(text, spark, fire)
    assert marked[head] == "@" and marked[tail] == "#"
    assert "# ^ nominal ^ fire #" in marked and "@ * nominal * spark @" in marked
    encoded = encode_pair(tokenizer, text, spark, fire, 64)
    assert encoded is not None
    assert tokenizer.id_to_token(encoded.ids[encoded.head_index]) == "@"
    assert tokenizer.id_to_token(encoded.ids[encoded.tail_index]) == "#"


def test_long_pair_inputs_are_cropped_around_the_markers(tokenizer: Tokenizer) -> None:
    filler = "blah " * 100
    text = f"{filler}The fire was caused by a spark. {filler}"
    fire = Mention(text.index("fire"), text.index("fire") + 4, "NOMINAL")
    spark = Mention(text.index("spark"), text.index("spark") + 5, "NOMINAL")
    encoded = encode_pair(tokenizer, text, fire, spark, 32)
    assert encoded is not None and len(encoded.ids) == 32
    assert tokenizer.id_to_token(encoded.ids[encoded.head_index]) == "@"
    assert tokenizer.id_to_token(encoded.ids[encoded.tail_index]) == "#"
    far = Mention(len(text) - 5, len(text) - 1, "NOMINAL")
    assert encode_pair(tokenizer, text, fire, far, 32) is None  # too far apart to fit: skipped, not truncated


def test_candidate_pairs_follow_the_schema() -> None:
    schema = make_rel_schema({"works_for": {"head": ["person"], "tail": ["corporation"]},
                              "located_in": {"head": ["person", "corporation"], "tail": ["location"]}})
    pairs = candidate_pairs(["person", "corporation", "location"], schema)
    assert pairs == [(0, 1, ["works_for"]), (0, 2, ["located_in"]), (1, 2, ["located_in"])]
    assert candidate_pairs(["person", "corporation"], schema, model_labels=["located_in"]) == []
