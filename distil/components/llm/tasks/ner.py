"""``distil.NER.v1``: named entities from an LLM, grounded to character offsets."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from spacy.tokens import Doc
from spacy_llm.registry import registry

from ....annotations import EntityPrediction, write_empty_score, write_entities
from ....schemas import NERSchema, ensure_schema
from ..answers import dump_answer, json_schema_of, validator
from ..grounding import ground
from ..prompting import load_template, render
from ..protocol import Chunk, LLMRequest, LLMResponse
from ..scores import answer_scores, empty_answer_probability
from .base import DistilLLMTask, ExamplesSetting, PromptExample

DEFAULT_INSTRUCTIONS = "Find the named entities in each text and list them by type as JSON."


def ner_answer_model(schema: NERSchema, max_per_label: int, max_mention_chars: int) -> type[BaseModel]:
    """The answer model: one optional list of mention strings per label, bounded in length.

    Keying mentions by label (``{"person": ["Tim Cook"]}``) writes each label
    once, which keeps answers short and makes the label set a closed list of
    properties rather than free text.
    """
    mention = Annotated[str, StringConstraints(min_length=1, max_length=max_mention_chars)]
    fields: dict[str, Any] = {
        f"label_{i}": (list[mention], Field(default_factory=list, max_length=max_per_label, alias=name))  # type: ignore[valid-type]
        for i, name in enumerate(schema.label_names)
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        "NERAnswer", __config__=ConfigDict(extra="forbid", populate_by_name=True), **fields
    )


class NERTask(DistilLLMTask):
    """Prompts for entities of the schema's labels and writes them with :func:`write_entities`."""

    distil_task = "ner"

    def __init__(
        self,
        schema: NERSchema,
        *,
        examples: ExamplesSetting = None,
        template: Optional[str] = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        max_per_label: int = 4,
        max_mention_chars: int = 60,
        closed_mentions: bool = False,
        max_mention_tokens: int = 6,
        max_candidates: int = 400,
        overlap: Literal["score", "longest"] = "longest",
        keep_existing: bool = False,
        max_chunk_chars: Optional[int] = None,
        answer_tokens: int = 256,
        component_name: Optional[str] = None,
    ) -> None:
        super().__init__(
            template=load_template("ner.jinja", template),
            max_chunk_chars=max_chunk_chars,
            answer_tokens=answer_tokens,
            component_name=component_name,
        )
        self.schema = schema
        self._instructions = instructions
        self._overlap = overlap
        self._keep_existing = keep_existing
        self._closed = closed_mentions
        self._max_mention_tokens = max_mention_tokens
        self._max_candidates = max_candidates
        self._max_mention_chars = max_mention_chars
        self._answer = ner_answer_model(schema, max_per_label, max_mention_chars)
        self._json_schema = json_schema_of(self._answer)
        self._parse = validator(self._answer)
        self._setup_examples(examples)

    def _example_labels(self, doc: Doc) -> frozenset[str]:
        return frozenset(ent.label_ for ent in doc.ents)

    def _example(self, doc: Doc, what: str) -> Optional[PromptExample]:
        self.schema.check_labels([e.label_ for e in doc.ents], what=what)
        by_label: dict[str, list[str]] = {}
        for ent in doc.ents:
            texts = by_label.setdefault(ent.label_, [])
            if ent.text not in texts:
                texts.append(ent.text)
        answer = self._answer.model_validate({label: texts for label, texts in by_label.items()})
        return {"text": doc.text, "answer": dump_answer(answer)}

    def _prompt(self, text: str, examples: Optional[list[PromptExample]] = None) -> str:
        return render(
            self._template,
            instructions=self._instructions,
            labels=self.schema.labels,
            examples=self._examples if examples is None else examples,
            text=text,
        )

    def _empty_prompt(self) -> str:
        return self._prompt("", self._examples)

    def candidates(self, doc: Doc, chunk: Chunk) -> list[str]:
        """The chunk's token n-grams that could be mentions (no leading/trailing punctuation or space)."""
        tokens = [t for t in doc if t.idx >= chunk.start and t.idx + len(t) <= chunk.end]
        seen: dict[str, None] = {}
        for i, first in enumerate(tokens):
            if first.is_punct or first.is_space:
                continue
            for last in tokens[i : i + self._max_mention_tokens]:
                if last.is_punct or last.is_space:
                    continue
                text = doc.text[first.idx : last.idx + len(last)]
                if len(text) <= self._max_mention_chars:
                    seen.setdefault(text, None)
        return list(seen)

    def _schema_for(self, doc: Doc, chunk: Chunk) -> dict[str, Any]:
        # A closed list of the text's own n-grams makes constrained decoders copy from the text:
        # nothing ungrounded, and fewer tokens to generate. Long chunks fall back to bounded strings.
        if not self._closed:
            return self._json_schema
        options = self.candidates(doc, chunk)
        if not options or len(options) > self._max_candidates:
            return self._json_schema
        schema = copy.deepcopy(self._json_schema)
        for prop in schema["properties"].values():
            prop["items"] = {"type": "string", "enum": options}
        return schema

    def _request(
        self, doc: Doc, chunk: Chunk, examples: list[PromptExample], shortlist: Optional[list[str]] = None
    ) -> Optional[LLMRequest]:
        return LLMRequest(
            task="ner",
            prompt=self._prompt(chunk.text, examples),
            json_schema=self._schema_for(doc, chunk),
            parse=self._parse,
            chunk=chunk,
            max_tokens=self._answer_tokens,
        )

    def _apply(self, doc: Doc, answers: list[LLMResponse], complete: bool) -> None:
        predictions: list[EntityPrediction] = []
        mentions = 0
        for answer in answers:
            chunk = answer.request.chunk
            data = answer.value.model_dump(by_alias=True)
            mentions += sum(len(data.get(label, [])) for label in self.schema.label_names)
            scores = answer_scores(answer.raw, answer.tokens)
            for label in self.schema.label_names:
                for position, mention in enumerate(data.get(label, [])):
                    self.stats.counts["mentions"] += 1
                    found = ground(mention, chunk.text)
                    if not found:
                        self.stats.counts["ungrounded"] += 1
                        continue
                    # The probability of the tokens that wrote this mention (None without log-probs).
                    score = scores.item([label, position]) if scores is not None else None
                    for start, end in found:
                        predictions.append(EntityPrediction(chunk.start + start, chunk.start + end, label, score))
        write_entities(
            doc, predictions, keep_existing=self._keep_existing, overlap=self._overlap, labels=self.schema.label_names
        )
        # A document without entities has no entity score to show the model's doubt: keep the probability of
        # its empty answer for the document's confidence (distil.confidence). None once the model named anything.
        empty = empty_answer_probability([(a.raw, a.tokens) for a in answers]) if not mentions else None
        write_empty_score(doc, "ner", empty)

    @property
    def labels(self) -> tuple[str, ...]:
        """The schema's entity labels."""
        return self.schema.label_names


@registry.llm_tasks("distil.NER.v1")
def make_ner_task(
    schema: Optional[NERSchema] = None,
    examples: ExamplesSetting = None,
    template: Optional[str] = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
    max_per_label: int = 4,
    max_mention_chars: int = 60,
    closed_mentions: bool = False,
    max_mention_tokens: int = 6,
    max_candidates: int = 400,
    overlap: Literal["score", "longest"] = "longest",
    keep_existing: bool = False,
    max_chunk_chars: Optional[int] = None,
    answer_tokens: int = 256,
    component_name: Optional[str] = None,
) -> NERTask:
    """NER through an LLM: the schema's labels, optional few-shot ``examples``.

    ``examples``: a JSONL records file or DocBin (static), or a
    ``distil.RetrievedExamples.v1`` block (chosen per document). Each entity
    is scored with the probability of the answer tokens that wrote it when the
    model gives log-probabilities.

    Mentions are grounded to the text (exact, case-insensitive, whitespace-
    normalised); ungrounded ones are counts and counted. ``max_per_label`` and
    ``max_mention_chars`` bound the answer's JSON Schema.
    """
    return NERTask(
        ensure_schema(schema, NERSchema, component_name or "ner"),
        examples=examples,
        template=template,
        instructions=instructions,
        max_per_label=max_per_label,
        max_mention_chars=max_mention_chars,
        closed_mentions=closed_mentions,
        max_mention_tokens=max_mention_tokens,
        max_candidates=max_candidates,
        overlap=overlap,
        keep_existing=keep_existing,
        max_chunk_chars=max_chunk_chars,
        answer_tokens=answer_tokens,
        component_name=component_name,
    )
