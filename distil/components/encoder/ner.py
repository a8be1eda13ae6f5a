"""``distil_ner_encoder``: token classification (BIO) on onnxruntime, written with ``write_entities``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import EntityPrediction, write_entities
from ...schemas import NERSchema, ensure_schema
from .alignment import DEFAULT_BUCKET_WINDOW, OUTSIDE, WordPiece, bucketed_batches, decode_bio, encode_words, pad_batch
from .component import SPEED_DEFAULTS, EncoderComponent
from .session import Runner, softmax


def annotate_entities(
    session: Runner, docs: list[Doc], labels: Sequence[str], batch_size: int, bucket_window: int = DEFAULT_BUCKET_WINDOW
) -> None:
    """Tag every token of ``docs`` (long docs in word-aligned chunks) and write the entities.

    Each word takes the class predicted at its first sub-word; an entity's
    score is the mean probability of its tags. Inputs are batched by
    :func:`~distil.components.encoder.alignment.bucketed_batches` (sorted by
    length within windows of ``bucket_window`` documents; 0: input order) and
    every prediction is written back to its own document and word.
    """
    classes = session.manifest.classes
    max_length = session.manifest.max_length
    pieces: list[tuple[int, WordPiece]] = []
    for index, doc in enumerate(docs):
        for piece in encode_words(session.tokenizer, [token.text for token in doc], max_length):
            pieces.append((index, piece))
    tags: list[list[str]] = [[OUTSIDE] * len(doc) for doc in docs]
    scores: list[list[float]] = [[1.0] * len(doc) for doc in docs]
    lengths = [len(piece.ids) for _, piece in pieces]
    owners = [doc_index for doc_index, _ in pieces]
    for batch in bucketed_batches(lengths, batch_size, bucket_window, owners):
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
        annotate_entities(self.session, docs, self.schema.label_names, self.batch_size, self.bucket_window)


@Language.factory(
    "distil_ner_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32, **SPEED_DEFAULTS},
)
def make_ner_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[NERSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
    bucket_window: int = DEFAULT_BUCKET_WINDOW,
    inter_op_threads: int = 1,
    graph_optimization: str = "all",
    mem_pattern: bool = True,
    spin: bool = False,
) -> EncoderNER:
    """Build the NER encoder component from a model directory written by ``distil train ner``."""
    checked = ensure_schema(schema, NERSchema, name)
    return EncoderNER(
        nlp, name, model, checked, precision, threads, batch_size, bucket_window, inter_op_threads, graph_optimization,
        mem_pattern, spin,
    )
