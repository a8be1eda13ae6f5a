"""``distil.TextCat.v1``: document categories from an LLM, exclusive or multi-label per schema."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model
from spacy.tokens import Doc
from spacy_llm.registry import registry

from ....annotations import write_cats
from ....schemas import TextCatSchema, ensure_schema
from ..answers import dump_answer, json_schema_of, validator
from ..prompting import load_template, render
from ..protocol import Chunk, LLMRequest, LLMResponse
from ..scores import answer_scores, label_distribution
from .base import DistilLLMTask, ExamplesSetting, PromptExample, label_text

DEFAULT_INSTRUCTIONS = "Classify each text into the categories below. Answer with JSON."
# Distinct shortlists whose JSON Schema is kept (least recently used out): each document may have its own.
OFFERED_SCHEMAS_KEPT = 256


def textcat_answer_model(schema: TextCatSchema, offered: Optional[tuple[str, ...]] = None) -> type[BaseModel]:
    """``{"label": <one label>}`` for an exclusive schema, ``{"labels": [<labels>]}`` otherwise.

    ``offered``: the labels the answer may name (a shortlist), by default all of the schema's.
    """
    names = offered or schema.label_names
    label_type: Any = Literal[names]  # type: ignore[valid-type]
    config = ConfigDict(extra="forbid")
    if schema.exclusive:
        return create_model("TextCatAnswer", __config__=config, label=(label_type, ...))  # type: ignore[call-overload,no-any-return]
    return create_model(  # type: ignore[call-overload,no-any-return]
        "TextCatAnswer",
        __config__=config,
        labels=(list[label_type], Field(default_factory=list, max_length=len(names))),
    )


class TextCatTask(DistilLLMTask):
    """Prompts for the doc's categories and writes scores with :func:`write_cats`.

    With token log-probabilities, a chosen label scores the probability of the
    tokens that wrote it, and (exclusive schemas, with the model's
    ``top_logprobs``) the labels not chosen score the alternatives the model
    had where the label starts, never above the chosen one. Without them a
    chosen label scores 1.0 and the others 0.0. With ``shortlist = N`` (and
    retrieved examples) each document is offered only its N likeliest labels
    (:class:`~..retrieval.LabelShortlist`), in the prompt and in the answer's
    JSON Schema; labels left out score 0. A multi-label answer's labels
    never score below the schema's threshold, so a score never undoes the
    model's choice. A doc split into chunks gets, per label, the mean over chunks.
    """

    distil_task = "textcat"

    def __init__(
        self,
        schema: TextCatSchema,
        *,
        examples: ExamplesSetting = None,
        template: Optional[str] = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        max_chunk_chars: Optional[int] = None,
        answer_tokens: int = 64,
        shortlist: Optional[int] = None,
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
        self._setup_examples(examples)
        self._setup_shortlist(shortlist, {label.name: label_text(label) for label in schema.labels})
        # One JSON Schema per distinct shortlist, kept while it repeats (bounded: shortlists vary per document).
        self._offered_schemas: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()

    def _example_labels(self, doc: Doc) -> frozenset[str]:
        return frozenset(self.schema.predicted(doc.cats) if doc.cats else ())

    def _example(self, doc: Doc, what: str) -> Optional[PromptExample]:
        self.schema.check_labels(doc.cats, what=what)
        chosen = self.schema.predicted(doc.cats) if doc.cats else []
        if not chosen:
            return None
        value = {"label": chosen[0]} if self.schema.exclusive else {"labels": chosen}
        return {"text": doc.text, "answer": dump_answer(self._answer.model_validate(value))}

    def _prompt(
        self, text: str, examples: Optional[list[PromptExample]] = None, offered: Optional[tuple[str, ...]] = None
    ) -> str:
        labels = self.schema.labels if offered is None else [self.schema.get(name) for name in offered]
        return render(
            self._template,
            instructions=self._instructions,
            labels=labels,
            exclusive=self.schema.exclusive,
            examples=self._examples if examples is None else examples,
            text=text,
        )

    def _empty_prompt(self) -> str:
        return self._prompt("", self._examples)

    def _offered_schema(self, offered: Optional[tuple[str, ...]]) -> dict[str, Any]:
        if offered is None:
            return self._json_schema
        schema = self._offered_schemas.pop(offered, None)
        if schema is None:
            schema = json_schema_of(textcat_answer_model(self.schema, offered))
        self._offered_schemas[offered] = schema
        while len(self._offered_schemas) > OFFERED_SCHEMAS_KEPT:
            self._offered_schemas.popitem(last=False)
        return schema

    def _request(
        self, doc: Doc, chunk: Chunk, examples: list[PromptExample], shortlist: Optional[list[str]] = None
    ) -> Optional[LLMRequest]:
        offered = self._offered(shortlist)
        return LLMRequest(
            task="textcat",
            prompt=self._prompt(chunk.text, examples, offered),
            # The answer is parsed against the whole schema (any schema label is valid); the offered labels
            # constrain what the model may write (grammar, or the server's structured output).
            json_schema=self._offered_schema(offered),
            parse=self._parse,
            chunk=chunk,
            max_tokens=self._answer_tokens,
        )

    def answer_cats(self, answer: LLMResponse) -> dict[str, float]:
        """The category scores of one answer (see the class docstring)."""
        labels = self.schema.label_names
        scores = answer_scores(answer.raw, answer.tokens)
        if self.schema.exclusive:
            chosen = answer.value.label
            if scores is None:
                return {label: float(label == chosen) for label in labels}
            return label_distribution(scores, ["label"], chosen, labels)
        out = dict.fromkeys(labels, 0.0)
        for position, label in enumerate(answer.value.labels):
            score = scores.item(["labels", position]) if scores is not None else None
            value = 1.0 if score is None else max(score, self.schema.threshold)
            out[label] = max(out[label] if out[label] else 0.0, value)
        return out

    def _apply(self, doc: Doc, answers: list[LLMResponse], complete: bool) -> None:
        votes = dict.fromkeys(self.schema.label_names, 0.0)
        for answer in answers:
            for label, score in self.answer_cats(answer).items():
                votes[label] += score
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
    examples: ExamplesSetting = None,
    template: Optional[str] = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
    max_chunk_chars: Optional[int] = None,
    answer_tokens: int = 64,
    shortlist: Optional[int] = None,
    component_name: Optional[str] = None,
) -> TextCatTask:
    """Text classification through an LLM with the schema's labels (exclusive or multi-label).

    ``examples``: few-shot docs with ``cats`` (JSONL records or DocBin), or a
    ``distil.RetrievedExamples.v1`` block choosing them per document. Scores
    come from the model's token log-probabilities when it gives them.
    ``shortlist``: offer each document only its N likeliest labels, ranked
    from the retrieved examples' labels and the labels' descriptions (needs
    retrieved examples; for schemas with many labels, such as 77 intents).
    """
    return TextCatTask(
        ensure_schema(schema, TextCatSchema, component_name or "textcat"),
        examples=examples,
        template=template,
        instructions=instructions,
        max_chunk_chars=max_chunk_chars,
        answer_tokens=answer_tokens,
        shortlist=shortlist,
        component_name=component_name,
    )
