"""``distil.REL.v1``: relations between the Doc's existing entities, from an LLM.

The entities come from upstream (any NER backend, or gold input). The task
numbers them in the prompt and asks for relations by entity number; it writes
only relations (:func:`write_relations`) and never touches ``doc.text`` or
``doc.ents`` (spacy-llm's own REL task rewrites the text; this one does not).
"""

from __future__ import annotations

import copy
import json
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model
from spacy.tokens import Doc, Span
from spacy_llm.registry import registry

from ....annotations import RelationPrediction, write_empty_score, write_relations
from ....schemas import RELSchema, ensure_schema
from ..answers import dump_answer, json_schema_of, validator
from ..prompting import load_template, render
from ..protocol import AnswerError, Chunk, LLMRequest, LLMResponse
from ..scores import answer_scores, empty_answer_probability
from .base import DistilLLMTask, ExamplesSetting, PromptExample, label_text

DEFAULT_INSTRUCTIONS = (
    "List the relations between the numbered entities of each text as JSON. "
    "head and tail are entity numbers; give no relation when none applies."
)


def rel_answer_model(schema: RELSchema, max_relations: int) -> type[BaseModel]:
    """``{"relations": [{"head": i, "tail": j, "label": <label>}]}``, at most ``max_relations``."""
    config = ConfigDict(extra="forbid")
    label_type: Any = Literal[schema.label_names]  # type: ignore[valid-type]
    item = create_model(  # type: ignore[call-overload]
        "RelationAnswer", __config__=config, head=(int, Field(ge=0)), tail=(int, Field(ge=0)), label=(label_type, ...)
    )
    return create_model(  # type: ignore[call-overload,no-any-return]
        "RELAnswer", __config__=config, relations=(list[item], Field(default_factory=list, max_length=max_relations))  # type: ignore[valid-type]
    )


def _describe(index: int, ent: Span) -> str:
    return f"[{index}] {json.dumps(ent.text, ensure_ascii=False)} ({ent.label_})"


class RELTask(DistilLLMTask):
    """Prompts for relations among the entities of each chunk; see the module docstring."""

    distil_task = "rel"

    def __init__(
        self,
        schema: RELSchema,
        *,
        examples: ExamplesSetting = None,
        template: Optional[str] = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        max_relations: int = 8,
        max_chunk_chars: Optional[int] = None,
        answer_tokens: int = 192,
        shortlist: Optional[int] = None,
        component_name: Optional[str] = None,
    ) -> None:
        super().__init__(
            template=load_template("rel.jinja", template),
            max_chunk_chars=max_chunk_chars,
            answer_tokens=answer_tokens,
            component_name=component_name,
        )
        self.schema = schema
        self._instructions = instructions
        self._answer = rel_answer_model(schema, max_relations)
        self._json_schema = json_schema_of(self._answer)
        self._setup_examples(examples)
        self._setup_shortlist(shortlist, {label.name: label_text(label) for label in schema.labels})

    def _example_labels(self, doc: Doc) -> frozenset[str]:
        return frozenset(r.label for r in doc._.relations)

    def _example(self, doc: Doc, what: str) -> Optional[PromptExample]:
        relations = doc._.relations
        self.schema.check_labels([r.label for r in relations], what=what)
        value = {"relations": [{"head": r.head_index, "tail": r.tail_index, "label": r.label} for r in relations]}
        return {
            "text": doc.text,
            "entities": "; ".join(_describe(i, ent) for i, ent in enumerate(doc.ents)),
            "answer": dump_answer(self._answer.model_validate(value)),
        }

    def _prompt(
        self,
        text: str,
        entities: str,
        examples: Optional[list[PromptExample]] = None,
        offered: Optional[tuple[str, ...]] = None,
    ) -> str:
        labels = self.schema.labels if offered is None else [self.schema.get(name) for name in offered]
        return render(
            self._template,
            instructions=self._instructions,
            labels=labels,
            examples=self._examples if examples is None else examples,
            text=text,
            entities=entities,
        )

    def _empty_prompt(self) -> str:
        return self._prompt("", "", self._examples)

    def _chunk_entities(self, doc: Doc, chunk: Chunk) -> list[int]:
        return [i for i, ent in enumerate(doc.ents) if ent.start_char >= chunk.start and ent.end_char <= chunk.end]

    def _wants(self, doc: Doc, chunk: Chunk) -> bool:
        return len(self._chunk_entities(doc, chunk)) >= 2

    def _request(
        self, doc: Doc, chunk: Chunk, examples: list[PromptExample], shortlist: Optional[list[str]] = None
    ) -> Optional[LLMRequest]:
        indices = self._chunk_entities(doc, chunk)
        if len(indices) < 2:
            return None
        ents = doc.ents
        # Only the types some ordered pair of these entities may carry are offered (and none: nothing to ask);
        # a label no pair can take is noise in the prompt and a dropped answer.
        possible = {
            label
            for head in indices
            for tail in indices
            if head != tail
            for label in self.schema.allowed_labels(ents[head].label_, ents[tail].label_)
        }
        if not possible:
            return None
        schema = copy.deepcopy(self._json_schema)
        item = schema["properties"]["relations"]["items"]
        item["properties"]["head"] = {"type": "integer", "enum": indices}
        item["properties"]["tail"] = {"type": "integer", "enum": indices}
        allowed = set(indices)
        # A shortlist (in schema order, as the prompt lists labels) narrows the label enum: the grammar of
        # llama.cpp enforces it, and the check below refuses another label from a server that ignores schemas.
        offered = self._offered(shortlist, possible)
        if offered is not None:
            item["properties"]["label"] = {"type": "string", "enum": list(offered)}

        def check(value: Any) -> None:
            for rel in value.relations:
                if rel.head not in allowed or rel.tail not in allowed:
                    raise AnswerError(
                        "schema_violation",
                        f"relation {rel.label} refers to entity {rel.head}/{rel.tail}; the entities are {indices}",
                    )
                if rel.head == rel.tail:
                    raise AnswerError("schema_violation", f"relation {rel.label} links entity {rel.head} to itself")
                if offered is not None and rel.label not in offered:
                    raise AnswerError("schema_violation", f"relation label {rel.label} is not offered; offered: {offered}")

        return LLMRequest(
            task="rel",
            prompt=self._prompt(chunk.text, "; ".join(_describe(i, ents[i]) for i in indices), examples, offered),
            json_schema=schema,
            parse=validator(self._answer, check),
            chunk=chunk,
            max_tokens=self._answer_tokens,
        )

    def _apply(self, doc: Doc, answers: list[LLMResponse], complete: bool) -> None:
        ents = doc.ents
        predictions: list[RelationPrediction] = []
        for answer in answers:
            scores = answer_scores(answer.raw, answer.tokens)
            for position, rel in enumerate(answer.value.relations):
                self.stats.counts["relations"] += 1
                if rel.label not in self.schema.allowed_labels(ents[rel.head].label_, ents[rel.tail].label_):
                    self.stats.counts["rejected_relations"] += 1
                    continue
                # The probability of the tokens of the whole relation object: head, tail and label.
                score = scores.item(["relations", position]) if scores is not None else None
                predictions.append(RelationPrediction(rel.head, rel.tail, rel.label, score))
        write_relations(doc, predictions, self.schema)
        # As for entities: without relations, the probability of the empty answers is the document's confidence
        # for this task (1.0 when no chunk had two entities to relate: there was nothing to decide).
        named = any(answer.value.relations for answer in answers)
        write_empty_score(doc, "rel", None if named else empty_answer_probability([(a.raw, a.tokens) for a in answers]))

    @property
    def labels(self) -> tuple[str, ...]:
        """The schema's relation labels."""
        return self.schema.label_names


@registry.llm_tasks("distil.REL.v1")
def make_rel_task(
    schema: Optional[RELSchema] = None,
    examples: ExamplesSetting = None,
    template: Optional[str] = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
    max_relations: int = 8,
    max_chunk_chars: Optional[int] = None,
    answer_tokens: int = 192,
    shortlist: Optional[int] = None,
    component_name: Optional[str] = None,
) -> RELTask:
    """Relation extraction through an LLM between the Doc's existing entities.

    ``examples``: few-shot docs with entities and relations (JSONL records or
    DocBin), or a ``distil.RetrievedExamples.v1`` block choosing them per
    document. Relations are scored from the model's token log-probabilities
    when it gives them. A relation whose label the schema does not allow for its entity
    types is dropped and counted. ``shortlist = N`` (with retrieved examples)
    offers each document only the N relation types ranked likeliest from its
    retrieved examples' relations and the types' descriptions, in the prompt
    and in the answer schema.
    """
    return RELTask(
        ensure_schema(schema, RELSchema, component_name or "rel"),
        examples=examples,
        template=template,
        instructions=instructions,
        max_relations=max_relations,
        max_chunk_chars=max_chunk_chars,
        answer_tokens=answer_tokens,
        shortlist=shortlist,
        component_name=component_name,
    )
