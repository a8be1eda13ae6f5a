"""Request and response bodies of the HTTP API, as pydantic models so that ``/openapi.json`` documents them."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..records import DocRecord


def _not_empty(text: str) -> str:
    # `distil run` skips such a text with the reason "empty text"; over HTTP the reason is the answer (422).
    if not text.strip():
        raise ValueError("empty text")
    return text


class AnnotateRequest(BaseModel):
    """One text (``text``) or several (``texts``), never both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Apple hired Tim Cook."}, {"texts": ["Apple hired Tim Cook.", "Hi"]}]},
    )

    text: Optional[str] = Field(default=None, description="One document.")
    texts: Optional[list[str]] = Field(default=None, min_length=1, description="Several documents, answered in order.")

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, text: Optional[str]) -> Optional[str]:
        return None if text is None else _not_empty(text)

    @field_validator("texts")
    @classmethod
    def _texts_not_all_empty(cls, texts: Optional[list[str]]) -> Optional[list[str]]:
        # As in `distil run`: an empty text among others is skipped with the reason "empty text" (its
        # record is null, `errors` names it); a request with nothing to annotate is refused.
        if texts is not None and texts and not any(text.strip() for text in texts):
            raise ValueError("every text is empty")
        return texts

    @model_validator(mode="after")
    def _one_of(self) -> AnnotateRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError('give exactly one of "text" or "texts"')
        return self

    def all_texts(self) -> list[str]:
        """The request's texts as a list (one for ``text``)."""
        return [self.text] if self.text is not None else list(self.texts or [])


class DocFailure(BaseModel):
    """A document the pipeline raised on: its index in the request and the reason (as ``distil run`` reports it)."""

    index: int
    detail: str


class AnnotateResponse(BaseModel):
    """One record per input text, in order; ``null`` where that document failed (listed in ``errors``)."""

    records: list[Optional[DocRecord]]
    errors: list[DocFailure] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """The body of every refusal: one line saying what is wrong."""

    detail: Any = Field(description="A message, or FastAPI's list of validation errors (each naming its field).")


class ComponentSchema(BaseModel):
    """The task a component performs and its task schema (labels, descriptions)."""

    task: str
    schema_: Optional[dict[str, Any]] = Field(default=None, alias="schema")

    model_config = ConfigDict(populate_by_name=True)


class SchemaResponse(BaseModel):
    """What the served pipeline writes: its components' task schemas and the record's JSON Schema."""

    pipeline: list[str]
    components: dict[str, ComponentSchema]
    record: dict[str, Any]


class Health(BaseModel):
    """The answer of ``/healthz`` and ``/readyz``."""

    status: str
