"""Training examples for each task, built from annotated Docs with the runtime's own encoding code.

The same functions that the runtime uses (word chunking, typed markers) turn
gold Docs into token ids and targets, so training and inference see identical
inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from spacy.tokens import Doc, Span
from tokenizers import Tokenizer

from ..components.encoder.alignment import IGNORE, OUTSIDE, bio_classes, encode_words
from ..components.encoder.manifest import NO_RELATION
from ..components.encoder.markers import EntityWindows, Mention, candidate_pairs, encode_entities, encode_pair
from ..schemas import (
    NERSchema,
    RELSchema,
    SchemaError,
    TextCatSchema,
    make_ner_schema,
    make_rel_schema,
    make_textcat_schema,
)


@dataclass
class Example:
    """One model input and its target (per-position class ids, a class id, or a multi-hot vector)."""

    ids: list[int]
    target: list[int] | int | list[float]
    head_index: int = 0
    tail_index: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    # One-pass relations: the document's windows and the (head, tail) entity index of each target class.
    entities: EntityWindows | None = None
    pairs: list[tuple[int, int]] = field(default_factory=list)


def infer_schema(task: str, docs: Sequence[Doc]) -> NERSchema | TextCatSchema | RELSchema:
    """A schema with the labels seen in training data, for training without a declared schema.

    Text classification is exclusive when every doc has exactly one positive
    category. Relation labels allow the entity types seen as their heads and tails.
    """
    if task == "ner":
        labels = sorted({ent.label_ for doc in docs for ent in doc.ents})
        if not labels:
            raise SchemaError("the training data has no entities: nothing to learn for ner")
        return make_ner_schema(labels)  # type: ignore[no-any-return]
    if task == "textcat":
        names = sorted({label for doc in docs for label in doc.cats})
        if not names:
            raise SchemaError("the training data has no categories (doc.cats): nothing to learn for textcat")
        exclusive = all(sum(value >= 0.5 for value in doc.cats.values()) == 1 for doc in docs)
        return make_textcat_schema(names, exclusive=exclusive)
    heads: dict[str, set[str]] = {}
    tails: dict[str, set[str]] = {}
    for doc in docs:
        for rel in doc._.relations:
            heads.setdefault(rel.label, set()).add(rel.head.label_)
            tails.setdefault(rel.label, set()).add(rel.tail.label_)
    if not heads:
        raise SchemaError("the training data has no relations (doc._.relations): nothing to learn for rel")
    return make_rel_schema(
        [{"name": label, "head": sorted(heads[label]), "tail": sorted(tails[label])} for label in sorted(heads)]
    )


def output_classes(task: str, schema: NERSchema | TextCatSchema | RELSchema) -> list[str]:
    """The model's output classes for a task and schema."""
    if task == "ner":
        return bio_classes(schema.label_names)
    if task == "rel":
        return [NO_RELATION, *schema.label_names]
    return list(schema.label_names)


def ner_examples(docs: Sequence[Doc], tokenizer: Tokenizer, classes: Sequence[str], max_length: int) -> list[Example]:
    """BIO targets on the first sub-word of each word; other positions are ignored in the loss."""
    index = {name: k for k, name in enumerate(classes)}
    out = []
    for doc in docs:
        tags = [OUTSIDE if token.ent_iob_ in ("O", "") else f"{token.ent_iob_}-{token.ent_type_}" for token in doc]
        unknown = sorted({tag[2:] for tag in tags if tag != OUTSIDE and tag not in index})
        if unknown:
            raise SchemaError(f"training entity label(s) {', '.join(unknown)} not in the schema ({', '.join(classes)})")
        for piece in encode_words(tokenizer, [token.text for token in doc], max_length):
            target = [IGNORE] * len(piece.ids)
            for offset, position in enumerate(piece.first_token):
                if position >= 0:
                    target[position] = index[tags[piece.word_start + offset]]
            out.append(Example(piece.ids, target))
    return out


def textcat_examples(docs: Sequence[Doc], tokenizer: Tokenizer, schema: TextCatSchema, max_length: int) -> list[Example]:
    """A class id (exclusive) or a multi-hot vector (multi-label) per doc; long texts truncated."""
    labels = list(schema.label_names)
    out = []
    for doc in docs:
        schema.check_labels(doc.cats, what="training categories")
        ids = list(tokenizer.encode(doc.text).ids)
        if len(ids) > max_length:
            ids = [*ids[: max_length - 1], ids[-1]]
        positive = [label for label in labels if doc.cats.get(label, 0.0) >= 0.5]
        if schema.exclusive:
            if len(positive) != 1:
                continue  # an exclusive schema cannot learn from a doc with no or several gold labels
            out.append(Example(ids, labels.index(positive[0])))
        else:
            out.append(Example(ids, [1.0 if label in positive else 0.0 for label in labels]))
    return out


def rel_examples(docs: Sequence[Doc], tokenizer: Tokenizer, schema: RELSchema, max_length: int) -> list[Example]:
    """One example per candidate ordered pair: the gold relation's class, or ``no relation``."""
    classes = output_classes("rel", schema)
    out = []
    for doc in docs:
        ents = list(doc.ents)
        gold = _gold_pairs(doc, schema)
        for head, tail, allowed in candidate_pairs([e.label_ for e in ents], schema):
            label = gold.get((head, tail), NO_RELATION)
            if label != NO_RELATION and label not in allowed:
                label = NO_RELATION
            encoded = encode_pair(tokenizer, doc.text, _mention(ents[head]), _mention(ents[tail]), max_length)
            if encoded is not None:
                out.append(Example(encoded.ids, classes.index(label), encoded.head_index, encoded.tail_index))
    return out


def one_pass_examples(docs: Sequence[Doc], tokenizer: Tokenizer, schema: RELSchema, max_length: int) -> list[Example]:
    """One example per document with candidate pairs: every entity marked, a class per readable candidate pair.

    ``ids`` is the document's longest window (what batching sorts by); the
    targets follow the same rules as :func:`rel_examples`.
    """
    classes = output_classes("rel", schema)
    out = []
    for doc in docs:
        ents = list(doc.ents)
        gold = _gold_pairs(doc, schema)
        candidates = candidate_pairs([e.label_ for e in ents], schema)
        if not candidates:
            continue
        encoded = encode_entities(tokenizer, doc.text, [_mention(e) for e in ents], max_length)
        pairs: list[tuple[int, int]] = []
        targets: list[int] = []
        for head, tail, allowed in candidates:
            if encoded.rows[head] is None or encoded.rows[tail] is None:
                continue
            label = gold.get((head, tail), NO_RELATION)
            pairs.append((head, tail))
            targets.append(classes.index(label if label in allowed else NO_RELATION))
        if pairs:
            longest = max(encoded.windows, key=len)
            out.append(Example(longest, targets, entities=encoded, pairs=pairs))
    return out


def _gold_pairs(doc: Doc, schema: RELSchema) -> dict[tuple[int, int], str]:
    gold: dict[tuple[int, int], str] = {}
    for rel in doc._.relations:
        schema.check_labels([rel.label], what="training relations")
        gold[(rel.head_index, rel.tail_index)] = rel.label
        if schema.get(rel.label).symmetric:
            gold[(rel.tail_index, rel.head_index)] = rel.label
    return gold


def _mention(span: Span) -> Mention:
    return Mention(span.start_char, span.end_char, span.label_)


def blank_copy(doc: Doc, task: str) -> Doc:
    """The doc with the same tokens and no predictions of ``task`` (entities are kept for rel)."""
    copy = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    if task == "rel":
        copy.ents = [Span(copy, e.start, e.end, label=e.label_) for e in doc.ents]
    return copy
