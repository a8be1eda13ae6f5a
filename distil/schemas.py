"""Task schemas: the single declaration of labels that every backend of a task obeys.

A schema is declared once in a pipeline config (a ``[schemas.*]`` block built by a
registered function such as ``distil.NERSchema.v1``) and passed by reference to
each component of that task. Components call :meth:`check_labels` at load time
so that a rule, a trained model or a prompt that mentions a label outside the
schema fails loudly, naming the offending labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from spacy.util import registry

from .errors import DistilError

TaskName = Literal["ner", "textcat", "rel"]
TASKS: tuple[TaskName, ...] = ("ner", "textcat", "rel")


class SchemaError(DistilError, ValueError):
    """A schema, or a component checked against one, is invalid."""


class LabelSpec(BaseModel):
    """One label: its name, a description for prompts and docs, optional examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    examples: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(f"label name {value!r} has leading or trailing whitespace")
        return value


class RelationLabelSpec(LabelSpec):
    """A relation label with the entity labels allowed as head and tail.

    Empty ``head``/``tail`` lists mean any entity label is allowed. A symmetric
    relation has no direction: (a, b) and (b, a) are the same fact.
    """

    head: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    symmetric: bool = False

    def allows(self, head_label: str, tail_label: str) -> bool:
        """Whether an entity pair with these labels may carry this relation."""
        ok = (not self.head or head_label in self.head) and (not self.tail or tail_label in self.tail)
        if ok or not self.symmetric:
            return ok
        return (not self.head or tail_label in self.head) and (not self.tail or head_label in self.tail)


class _TaskSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: TaskName
    labels: tuple[LabelSpec, ...]

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: tuple[LabelSpec, ...]) -> tuple[LabelSpec, ...]:
        if not labels:
            raise ValueError("a schema needs at least one label")
        names = [label.name for label in labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate labels: {', '.join(dupes)}")
        return labels

    @property
    def label_names(self) -> tuple[str, ...]:
        """The label names in declaration order."""
        return tuple(label.name for label in self.labels)

    def get(self, name: str) -> LabelSpec:
        """The spec of one label; raises :class:`SchemaError` naming it if unknown."""
        for label in self.labels:
            if label.name == name:
                return label
        self.check_labels([name], what="label")
        raise AssertionError("unreachable")

    def check_labels(self, labels: Iterable[str], *, what: str = "component") -> None:
        """Raise a :class:`SchemaError` naming every label not in the schema.

        ``what`` describes where the labels came from ("rule patterns", "model
        directory /x") so that the message tells the user what to fix.
        """
        known = set(self.label_names)
        unknown = sorted({label for label in labels if label not in known})
        if unknown:
            raise SchemaError(
                f"{what} uses label(s) not in the {self.task} schema: {', '.join(map(repr, unknown))}. "
                f"Known labels: {', '.join(self.label_names)}. Fix the typo or add the label to "
                f"the [schemas] block of the config."
            )


class NERSchema(_TaskSchema):
    """Named-entity labels."""

    task: Literal["ner"] = "ner"


class TextCatSchema(_TaskSchema):
    """Document categories: exclusive (one label per doc) or multi-label with a threshold."""

    task: Literal["textcat"] = "textcat"
    exclusive: bool = True
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    def predicted(self, cats: Mapping[str, float]) -> list[str]:
        """The labels a score dict assigns: the argmax if exclusive, else all above threshold."""
        if not cats:
            return []
        if self.exclusive:
            return [max(cats, key=lambda k: cats[k])]
        return [label for label, score in cats.items() if score >= self.threshold]


class RELSchema(_TaskSchema):
    """Relation labels between pairs of entities."""

    task: Literal["rel"] = "rel"
    labels: tuple[RelationLabelSpec, ...]  # type: ignore[assignment]

    def get(self, name: str) -> RelationLabelSpec:
        """The spec of one relation label; raises :class:`SchemaError` if unknown."""
        spec = super().get(name)
        assert isinstance(spec, RelationLabelSpec)
        return spec

    @property
    def entity_labels(self) -> tuple[str, ...]:
        """Every entity label mentioned as an allowed head or tail (empty: any)."""
        seen: dict[str, None] = {}
        for label in self.labels:
            for name in (*label.head, *label.tail):
                seen.setdefault(name, None)
        return tuple(seen)

    def allowed_labels(self, head_label: str, tail_label: str) -> list[str]:
        """The relation labels this (head, tail) entity-label pair may carry."""
        return [spec.name for spec in self.labels if spec.allows(head_label, tail_label)]


TaskSchema = Union[NERSchema, TextCatSchema, RELSchema]

LabelsArg = Union[list[str], dict[str, str], list[dict[str, Any]]]


def _label_specs(labels: Any, spec_cls: type[LabelSpec], task: str) -> list[dict[str, Any]]:
    """Accept the three config spellings of labels and normalise them to dicts.

    ``["A", "B"]``, ``{"A": "description"}`` or ``[{"name": "A", ...}]``.
    """
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",") if part.strip()]
    if isinstance(labels, Mapping):
        out: list[dict[str, Any]] = []
        for name, value in labels.items():
            if isinstance(value, Mapping):
                out.append({"name": name, **value})
            else:
                out.append({"name": name, "description": "" if value is None else str(value)})
        return out
    if isinstance(labels, (list, tuple)):
        result = []
        for item in labels:
            if isinstance(item, str):
                result.append({"name": item})
            elif isinstance(item, Mapping):
                result.append(dict(item))
            else:
                raise SchemaError(f"{task} schema: a label must be a name or a table, got {item!r}")
        return result
    raise SchemaError(f"{task} schema: 'labels' must be a list or a table of label: description, got {labels!r}")


def _build(cls: type[_TaskSchema], where: str, **values: Any) -> Any:
    try:
        return cls(**values)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'schema'}: {e['msg']} (got {e.get('input')!r})" for e in err.errors()
        )
        raise SchemaError(f"invalid {where}: {problems}") from None


@registry.misc("distil.NERSchema.v1")
def make_ner_schema(labels: Any) -> NERSchema:
    """Build an NER schema from labels given as a list, a table or a list of tables."""
    return _build(NERSchema, "NER schema", labels=_label_specs(labels, LabelSpec, "ner"))


@registry.misc("distil.TextCatSchema.v1")
def make_textcat_schema(labels: Any, exclusive: bool = True, threshold: float = 0.5) -> TextCatSchema:
    """Build a text-classification schema (exclusive or multi-label with a threshold)."""
    return _build(
        TextCatSchema,
        "text classification schema",
        labels=_label_specs(labels, LabelSpec, "textcat"),
        exclusive=exclusive,
        threshold=threshold,
    )


@registry.misc("distil.RELSchema.v1")
def make_rel_schema(labels: Any) -> RELSchema:
    """Build a relation schema; each label may set ``head``, ``tail`` and ``symmetric``."""
    return _build(RELSchema, "relation schema", labels=_label_specs(labels, RelationLabelSpec, "rel"))


def ensure_schema(value: Any, cls: type[Any], component: str) -> Any:
    """Check at load time that a component got a schema of the right task.

    Components receive their schema through config interpolation; a missing or
    wrong reference must fail with a message that says which block to add.
    """
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        factories: dict[type[Any], Any] = {
            NERSchema: make_ner_schema,
            TextCatSchema: make_textcat_schema,
            RELSchema: make_rel_schema,
        }
        return factories[cls](**value)
    task = cls.model_fields["task"].default
    raise SchemaError(
        f"component {component!r} needs a {task} schema, got {value!r}. Declare one in the config, e.g. "
        f"[schemas.{task}] with @misc = \"distil.{cls.__name__}.v1\", and set schema = ${{schemas.{task}}} "
        f"in the component block."
    )
