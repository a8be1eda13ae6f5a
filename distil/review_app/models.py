"""The request and response bodies of the review server's JSON API (so the OpenAPI document is the code)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..records import DocRecord
from .edits import Edit


class ProgressBody(BaseModel):
    """How far a reviewer got."""

    total: int
    decided: int
    accepted: int
    corrected: int
    rejected: int


class DecisionBody(BaseModel):
    """A decision as saved in ``review.sqlite``."""

    id: int
    reviewer: str
    key: str
    decision: Literal["accept", "reject", "correct"]
    record: DocRecord
    created_at: str


class DocumentResponse(BaseModel):
    """One document of the review, as the reviewer asking sees it."""

    position: int = Field(description="1-based place in the review order.")
    total: int
    key: str
    order: str
    record: DocRecord = Field(description="What the page shows: the reviewer's decided answer, else the teacher's.")
    teacher: DocRecord = Field(description="The teacher's answer, placed on the tokens.")
    decision: Optional[DecisionBody] = None
    confidence: float
    disagreement: Optional[float] = None
    note: Optional[str] = None
    html: str = Field(description="The document fragment of the page (text, relations, categories), escaped.")
    progress: ProgressBody


class EditRequest(BaseModel):
    """One edit of the page's draft of a document; nothing is saved."""

    model_config = ConfigDict(extra="forbid")
    key: str
    record: DocRecord
    op: Edit


class EditResponse(BaseModel):
    """The draft after the edit, and its fragment for the page."""

    record: DocRecord
    html: str


class DecisionRequest(BaseModel):
    """A reviewer's decision on one document."""

    model_config = ConfigDict(extra="forbid")
    key: str
    decision: Literal["accept", "reject", "correct"]
    record: Optional[DocRecord] = Field(
        default=None, description="The reviewed answer (needed by 'correct'; 'accept' without it keeps the teacher's)."
    )
    reviewer: Optional[str] = Field(default=None, description="Who decides (default: the server's --reviewer).")


class DecisionResponse(BaseModel):
    """The decision as saved, and where the reviewer goes next."""

    saved: DecisionBody
    next: Optional[int] = Field(description="1-based position of the next document not yet decided; null: all are.")
    progress: ProgressBody
    agreement: dict[str, Any]


class LoginRequest(BaseModel):
    """The token the server was started with (``--token-env``)."""

    model_config = ConfigDict(extra="forbid")
    token: str


class ErrorResponse(BaseModel):
    """A refusal: what is wrong and how to fix it."""

    detail: str
