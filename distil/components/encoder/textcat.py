"""``distil_textcat_encoder``: sequence classification on onnxruntime, written with ``write_cats``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import write_cats
from ...schemas import TextCatSchema, ensure_schema
from .alignment import DEFAULT_BUCKET_WINDOW, bucketed_batches, pad_batch
from .component import SPEED_DEFAULTS, EncoderComponent
from .session import Runner, sigmoid, softmax


def annotate_cats(
    session: Runner, docs: list[Doc], schema: TextCatSchema, batch_size: int, bucket_window: int = DEFAULT_BUCKET_WINDOW
) -> None:
    """Score every category for each of ``docs`` (softmax if exclusive, else sigmoid) and write ``doc.cats``.

    Texts longer than the model's maximum length are truncated (the head of a
    text carries most of its category). Inputs are sorted by length within
    windows of ``bucket_window`` documents (0: input order) before batching.
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
    for batch in bucketed_batches([len(seq) for seq in sequences], batch_size, bucket_window):
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
        annotate_cats(self.session, docs, self.schema, self.batch_size, self.bucket_window)  # type: ignore[arg-type]


@Language.factory(
    "distil_textcat_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32, **SPEED_DEFAULTS},
)
def make_textcat_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[TextCatSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
    bucket_window: int = DEFAULT_BUCKET_WINDOW,
    inter_op_threads: int = 1,
    graph_optimization: str = "all",
    mem_pattern: bool = True,
    spin: bool = False,
) -> EncoderTextCat:
    """Build the text-classification encoder component from a ``distil train textcat`` model directory."""
    checked = ensure_schema(schema, TextCatSchema, name)
    return EncoderTextCat(
        nlp, name, model, checked, precision, threads, batch_size, bucket_window, inter_op_threads, graph_optimization,
        mem_pattern, spin,
    )
