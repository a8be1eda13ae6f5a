"""``distil_ner_encoder``: token classification (BIO) on onnxruntime, written with ``write_entities``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import EntityPrediction, write_entities
from ...schemas import NERSchema, ensure_schema
from .alignment import OUTSIDE, WordPiece, decode_bio, encode_words, length_sorted_batches, pad_batch
from .component import EncoderComponent
from .session import Runner, softmax


def annotate_entities(session: Runner, docs: list[Doc], labels: Sequence[str], batch_size: int) -> None:
    """Tag every token of ``docs`` (long docs in word-aligned chunks) and write the entities.

    Each word takes the class predicted at its first sub-word; an entity's
    score is the mean probability of its tags.
    """
    classes = session.manifest.classes
    max_length = session.manifest.max_length
    pieces: list[tuple[int, WordPiece]] = []
    for index, doc in enumerate(docs):
        for piece in encode_words(session.tokenizer, [token.text for token in doc], max_length):
            pieces.append((index, piece))
    tags: list[list[str]] = [[OUTSIDE] * len(doc) for doc in docs]
    scores: list[list[float]] = [[1.0] * len(doc) for doc in docs]
    for batch in length_sorted_batches([len(piece.ids) for _, piece in pieces], batch_size):
        ids, mask = pad_batch([pieces[i][1].ids for i in batch], session.pad_id)
        probs = softmax(session.run({"input_ids": ids, "attention_mask": mask}))
        best = probs.argmax(axis=-1)
        for row, piece_index in enumerate(batch):
            doc_index, piece = pieces[piece_index]
            for offset, position in enumerate(piece.first_token):
                if position < 0:
                    continue
                word = piece.word_start + offset
                tags[doc_index][word] = classes[int(best[row, position])]
                scores[doc_index][word] = float(probs[row, position, best[row, position]])
    for doc, doc_tags, doc_scores in zip(docs, tags, scores, strict=True):
        predictions = [
            EntityPrediction(doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text), label, round(score, 6))
            for start, end, label, score in decode_bio(doc_tags, doc_scores)
        ]
        write_entities(doc, predictions, labels=labels)


class EncoderNER(EncoderComponent):
    """Named entities from a fine-tuned token classifier, each with a score."""

    distil_task = "ner"

    def predict_docs(self, docs: list[Doc]) -> None:
        """Tag every token of ``docs`` and write the entities."""
        annotate_entities(self.session, docs, self.schema.label_names, self.batch_size)


@Language.factory(
    "distil_ner_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32},
)
def make_ner_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[NERSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
) -> EncoderNER:
    """Build the NER encoder component from a model directory written by ``distil train ner``."""
    checked = ensure_schema(schema, NERSchema, name)
    return EncoderNER(nlp, name, model, checked, precision, threads, batch_size)
