"""``distil.TextCat.v1``: document categories from an LLM, exclusive or multi-label per schema."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model
from spacy.tokens import Doc
from spacy_llm.registry import registry

from ....annotations import write_cats
from ....schemas import TextCatSchema, ensure_schema
from ..answers import dump_answer, json_schema_of, validator
from ..examples import load_examples
from ..prompting import load_template, render
from ..protocol import Chunk, LLMRequest, LLMResponse
from .base import DistilLLMTask

DEFAULT_INSTRUCTIONS = "Classify each text into the categories below. Answer with JSON."


def textcat_answer_model(schema: TextCatSchema) -> type[BaseModel]:
    """``{"label": <one label>}`` for an exclusive schema, ``{"labels": [<labels>]}`` otherwise."""
    label_type: Any = Literal[schema.label_names]  # type: ignore[valid-type]
    config = ConfigDict(extra="forbid")
    if schema.exclusive:
        return create_model("TextCatAnswer", __config__=config, label=(label_type, ...))  # type: ignore[call-overload,no-any-return]
    return create_model(  # type: ignore[call-overload,no-any-return]
        "TextCatAnswer",
        __config__=config,
        labels=(list[label_type], Field(default_factory=list, max_length=len(schema.label_names))),
    )


class TextCatTask(DistilLLMTask):
    """Prompts for the doc's categories and writes scores with :func:`write_cats`.

    An LLM gives no calibrated score: a chosen label scores 1.0. A doc split
    into chunks gets, per label, the share of chunks that chose it.
    """

    distil_task = "textcat"

    def __init__(
        self,
        schema: TextCatSchema,
        *,
        examples: Optional[str] = None,
        template: Optional[str] = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        max_chunk_chars: Optional[int] = None,
        answer_tokens: int = 64,
        component_name: Optional[str] = None,
    ) -> None:
        super().__init__(
            template=load_template("textcat.jinja", template),
            max_chunk_chars=max_chunk_chars,
            answer_tokens=answer_tokens,
            component_name=component_name,
        )
        self.schema = schema
        self._instructions = instructions
        self._answer = textcat_answer_model(schema)
        self._json_schema = json_schema_of(self._answer)
        self._parse = validator(self._answer)
        example_docs = load_examples(examples)
        self._examples = []
        for doc in example_docs:
            chosen = schema.predicted(doc.cats) if doc.cats else []
            schema.check_labels(doc.cats, what=f"few-shot examples {examples}")
            if not chosen:
                continue
            value = {"label": chosen[0]} if schema.exclusive else {"labels": chosen}
            self._examples.append({"text": doc.text, "answer": dump_answer(self._answer.model_validate(value))})

    def _prompt(self, text: str) -> str:
        return render(
            self._template,
            instructions=self._instructions,
            labels=self.schema.labels,
            exclusive=self.schema.exclusive,
            examples=self._examples,
            text=text,
        )

    def _empty_prompt(self) -> str:
        return self._prompt("")

    def _request(self, doc: Doc, chunk: Chunk) -> Optional[LLMRequest]:
        return LLMRequest(
            task="textcat",
            prompt=self._prompt(chunk.text),
            json_schema=self._json_schema,
            parse=self._parse,
            chunk=chunk,
            max_tokens=self._answer_tokens,
        )

    def _apply(self, doc: Doc, answers: list[LLMResponse], complete: bool) -> None:
        votes = dict.fromkeys(self.schema.label_names, 0.0)
        for answer in answers:
            chosen = [answer.value.label] if self.schema.exclusive else list(dict.fromkeys(answer.value.labels))
            for label in chosen:
                votes[label] += 1.0
        if answers:
            votes = {label: count / len(answers) for label, count in votes.items()}
        write_cats(doc, votes, self.schema)

    @property
    def labels(self) -> tuple[str, ...]:
        """The schema's category labels."""
        return self.schema.label_names


@registry.llm_tasks("distil.TextCat.v1")
def make_textcat_task(
    schema: Optional[TextCatSchema] = None,
    examples: Optional[str] = None,
    template: Optional[str] = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
    max_chunk_chars: Optional[int] = None,
    answer_tokens: int = 64,
    component_name: Optional[str] = None,
) -> TextCatTask:
    """Text classification through an LLM with the schema's labels (exclusive or multi-label).

    ``examples``: few-shot docs with ``cats`` (JSONL records or DocBin).
    """
    return TextCatTask(
        ensure_schema(schema, TextCatSchema, component_name or "textcat"),
        examples=examples,
        template=template,
        instructions=instructions,
        max_chunk_chars=max_chunk_chars,
        answer_tokens=answer_tokens,
        component_name=component_name,
    )
