"""``distil_textcat_encoder``: sequence classification on onnxruntime, written with ``write_cats``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import write_cats
from ...schemas import TextCatSchema, ensure_schema
from .alignment import length_sorted_batches, pad_batch
from .component import EncoderComponent
from .session import Runner, sigmoid, softmax


def annotate_cats(session: Runner, docs: list[Doc], schema: TextCatSchema, batch_size: int) -> None:
    """Score every category for each of ``docs`` (softmax if exclusive, else sigmoid) and write ``doc.cats``.

    Texts longer than the model's maximum length are truncated (the head of a
    text carries most of its category).
    """
    manifest = session.manifest
    max_length = manifest.max_length
    sequences = []
    for doc in docs:
        ids = list(session.tokenizer.encode(doc.text).ids)
        if len(ids) > max_length:
            ids = [*ids[: max_length - 1], ids[-1]]
        sequences.append(ids)
    exclusive = bool(manifest.schema.get("exclusive", True))
    for batch in length_sorted_batches([len(seq) for seq in sequences], batch_size):
        ids_array, mask = pad_batch([sequences[i] for i in batch], session.pad_id)
        logits = session.run({"input_ids": ids_array, "attention_mask": mask})
        probs = softmax(logits) if exclusive else sigmoid(logits)
        for row, doc_index in enumerate(batch):
            scores = {label: float(probs[row, k]) for k, label in enumerate(manifest.classes)}
            write_cats(docs[doc_index], scores, schema)


class EncoderTextCat(EncoderComponent):
    """Document categories from a fine-tuned sequence classifier."""

    distil_task = "textcat"

    def predict_docs(self, docs: list[Doc]) -> None:
        """Score every category for each of ``docs``."""
        annotate_cats(self.session, docs, self.schema, self.batch_size)  # type: ignore[arg-type]


@Language.factory(
    "distil_textcat_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32},
)
def make_textcat_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[TextCatSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
) -> EncoderTextCat:
    """Build the text-classification encoder component from a ``distil train textcat`` model directory."""
    checked = ensure_schema(schema, TextCatSchema, name)
    return EncoderTextCat(nlp, name, model, checked, precision, threads, batch_size)
