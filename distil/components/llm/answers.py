"""Output models: the JSON Schema an answer must match, and the validator that enforces it.

Each task builds a pydantic model of its answer from the task schema (labels as
an ``enum``, bounded list lengths and string lengths so that constrained
decoding terminates). The model's JSON Schema is sent to the LLM (grammar or
``response_format``) and the same model validates the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .protocol import AnswerError

M = TypeVar("M", bound=BaseModel)

_FENCE = "```"


def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema (by alias) with ``$ref``s inlined and titles removed.

    Inlining keeps the schema usable by grammar compilers and servers that do
    not resolve references; dropping titles keeps prompts and grammars small.
    A one-value ``Literal`` (pydantic's ``const``) is written as a one-item
    ``enum``, so a label set of any size has one shape.
    """
    schema = model.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].split("/")[-1]])
            if "const" in node and "enum" not in node:
                node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
            return {key: walk(value) for key, value in node.items() if key != "title"}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def extract_json(raw: str) -> Any:
    """Parse the first JSON value in ``raw``, tolerating a code fence or text around it."""
    text = raw.strip()
    if text.startswith(_FENCE):
        text = text[3:]
        if text.startswith("json"):
            text = text[4:]
        text = text.split(_FENCE, 1)[0]
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise AnswerError("invalid_json", f"no JSON object in the answer: {raw[:80]!r}")
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as err:
        raise AnswerError("invalid_json", f"the answer is not valid JSON ({err.msg} at char {err.pos})") from None
    return value


def validation_message(err: ValidationError, limit: int = 400) -> str:
    """A short, model-readable description of what in an answer violated the schema."""
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "answer"
        parts.append(f"{where}: {item['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validator(model: type[M], check: Callable[[M], None] | None = None) -> Callable[[str], M]:
    """A function that parses a raw answer into ``model`` or raises :class:`AnswerError`.

    ``check`` adds task-specific checks (an entity index out of range) that
    raise :class:`AnswerError` themselves.
    """

    def parse(raw: str) -> M:
        data = extract_json(raw)
        try:
            value = model.model_validate(data)
        except ValidationError as err:
            raise AnswerError("schema_violation", validation_message(err)) from None
        if check is not None:
            check(value)
        return value

    return parse


def dump_answer(value: BaseModel) -> str:
    """The compact JSON of an answer as shown in few-shot examples (by alias, no empty lists)."""
    data = value.model_dump(by_alias=True, exclude_defaults=True)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
