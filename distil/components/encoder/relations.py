"""``distil_rel_encoder``: entity-marker pair classification on onnxruntime, written with ``write_relations``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc

from ...annotations import RelationPrediction, write_relations
from ...schemas import RELSchema, ensure_schema
from .alignment import length_sorted_batches, pad_batch
from .component import EncoderComponent
from .manifest import NO_RELATION
from .markers import Mention, PairInput, candidate_pairs, encode_pair
from .session import Runner, softmax


def annotate_relations(session: Runner, docs: list[Doc], schema: RELSchema, batch_size: int) -> None:
    """Classify every candidate ordered pair of ``doc.ents`` and write the relations found.

    Candidates are the pairs whose entity types some schema label (known to the
    model) allows; each prediction is restricted to those labels and ``no
    relation``. Pairs whose markers cannot fit in the model's length are skipped.
    """
    manifest = session.manifest
    class_index = {name: k for k, name in enumerate(manifest.classes)}
    inputs: list[tuple[int, int, int, list[str], PairInput]] = []
    for doc_index, doc in enumerate(docs):
        ents = list(doc.ents)
        for head, tail, allowed in candidate_pairs([e.label_ for e in ents], schema, manifest.labels):
            encoded = encode_pair(
                session.tokenizer,
                doc.text,
                Mention(ents[head].start_char, ents[head].end_char, ents[head].label_),
                Mention(ents[tail].start_char, ents[tail].end_char, ents[tail].label_),
                manifest.max_length,
            )
            if encoded is not None:
                inputs.append((doc_index, head, tail, allowed, encoded))
    found: list[list[RelationPrediction]] = [[] for _ in docs]
    for batch in length_sorted_batches([len(item[4].ids) for item in inputs], batch_size):
        ids, mask = pad_batch([inputs[i][4].ids for i in batch], session.pad_id)
        feeds = {
            "input_ids": ids,
            "attention_mask": mask,
            "head_index": np.array([inputs[i][4].head_index for i in batch], dtype=np.int64),
            "tail_index": np.array([inputs[i][4].tail_index for i in batch], dtype=np.int64),
        }
        logits = session.run(feeds)
        for row, item_index in enumerate(batch):
            doc_index, head, tail, allowed, _ = inputs[item_index]
            keep = [class_index[NO_RELATION], *(class_index[name] for name in allowed)]
            probs = softmax(logits[row, keep])
            best = int(probs.argmax())
            if best > 0:
                found[doc_index].append(RelationPrediction(head, tail, allowed[best - 1], float(probs[best])))
    for doc, relations in zip(docs, found, strict=True):
        write_relations(doc, relations, schema)


class EncoderREL(EncoderComponent):
    """Relations between the entities already in ``doc.ents``, one prediction per candidate ordered pair."""

    distil_task = "rel"

    def predict_docs(self, docs: list[Doc]) -> None:
        """Classify the candidate pairs of ``docs`` and write the relations."""
        annotate_relations(self.session, docs, self.schema, self.batch_size)  # type: ignore[arg-type]


@Language.factory(
    "distil_rel_encoder",
    default_config={"schema": None, "precision": "int8", "threads": 1, "batch_size": 32},
)
def make_rel_encoder(
    nlp: Language,
    name: str,
    model: Union[str, Path],
    schema: Optional[RELSchema] = None,
    precision: str = "int8",
    threads: int = 1,
    batch_size: int = 32,
) -> EncoderREL:
    """Build the relation encoder component from a ``distil train rel`` model directory."""
    checked = ensure_schema(schema, RELSchema, name)
    return EncoderREL(nlp, name, model, checked, precision, threads, batch_size)
