"""Rule files (JSONL), the saved-pipeline mark, and the serialisation every rule component shares.

Every rule component takes inline rules and/or a JSONL file. A pipeline saved
with ``nlp.to_disk`` keeps its rules inside the component directory, so that
``spacy.load`` must not need the original file any more: the factory marks the
component in ``nlp.meta`` (saved to ``meta.json``), and when the factory runs
again during ``spacy.load`` it sees the mark and leaves the rules to
``from_disk`` instead of reading a file that may have moved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import srsly
from pydantic import BaseModel, ValidationError
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import SimpleFrozenList
from typing_extensions import Self

from ...errors import DistilError
from ...textfile import numbered_lines

META_KEY = "distil_rules"


class RuleFileError(DistilError, ValueError):
    """A rule or pattern file (or inline rule) is malformed; the message names the file and line."""


def read_jsonl(path: str | Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, row)`` for each non-blank line of a JSONL rule file.

    ``where`` is ``"path:line"`` so that later validation errors can name the
    line. A missing file, invalid UTF-8 or a line that is not a JSON object
    raises :class:`RuleFileError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise RuleFileError(
            f"{what} file not found: {path} (relative paths are resolved from the current directory, "
            f"{Path.cwd()}; run from the repository root or override the path, e.g. --paths.<name> FILE)"
        )
    with path.open("rb") as stream:
        for number, raw in numbered_lines(stream):  # drops a leading BOM, as every distil reader does
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                raise RuleFileError(f"{where}: invalid UTF-8 at byte {err.start}") from err
            except json.JSONDecodeError as err:
                raise RuleFileError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
            if not isinstance(row, dict):
                raise RuleFileError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
            yield where, row


def gather_rows(
    inline: Iterable[dict[str, Any]] | None, path: str | Path | None, what: str
) -> list[tuple[str, dict[str, Any]]]:
    """Inline rows (named ``inline[i]``) followed by the rows of the file, if any."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, row in enumerate(inline or []):
        if not isinstance(row, dict):
            raise RuleFileError(f"inline {what}[{i}]: must be a table/object, got {row!r}")
        rows.append((f"inline {what}[{i}]", dict(row)))
    if path is not None and str(path):
        rows.extend(read_jsonl(path, what))
    return rows


def validate_rows(model: type[Any], rows: Iterable[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Validate each row with a pydantic model; errors name the row's file and line."""
    out = []
    for where, row in rows:
        try:
            out.append(model.model_validate(row))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in err.errors(include_url=False)
            )
            raise RuleFileError(f"{where}: invalid rule {row!r}: {problems}") from None
    return out


def dump_rows(rules: Iterable[BaseModel]) -> list[dict[str, Any]]:
    """The JSON form of validated rules, without defaults, for saving inside a pipeline."""
    return [rule.model_dump(mode="json", exclude_defaults=True) for rule in rules]


def restored_from_disk(nlp: Language, name: str) -> bool:
    """Whether ``nlp`` is being rebuilt from a saved pipeline whose component ``name`` holds its rules.

    True only during ``spacy.load`` of a directory written by ``nlp.to_disk``:
    the mark comes from that pipeline's ``meta.json``.
    """
    marked = (nlp.meta.get(META_KEY) or {}).get("embedded") or []
    return name in marked


def mark_embedded(nlp: Language, name: str) -> None:
    """Record in ``nlp.meta`` that component ``name`` saves its rules with the pipeline."""
    meta = nlp.meta.setdefault(META_KEY, {})
    embedded = meta.setdefault("embedded", [])
    if name not in embedded:
        embedded.append(name)


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a rule component's state as ``rules.jsonl`` plus ``cfg`` (JSON) into directory ``path``.

    The standard library's JSON is used on purpose: srsly's reader parses
    ``0.7`` as ``0.7000000000000001``, and a saved pipeline must give exactly
    the scores of the one it was saved from.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = dict(state)
    rules = state.pop("rules")
    with (path / "rules.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(rule, ensure_ascii=False) + "\n" for rule in rules)
    (path / "cfg").write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")


def load_state(path: str | Path) -> dict[str, Any]:
    """Read what :func:`save_state` wrote."""
    path = Path(path)
    state = dict(json.loads((path / "cfg").read_text(encoding="utf-8")))
    state["rules"] = [row for _, row in read_jsonl(path / "rules.jsonl", "saved rules")]
    return state


class RuleComponent:
    """Processing and (de)serialisation shared by the rule components.

    Subclasses implement ``__call__``, ``_state`` (a JSON-able dict holding the
    rules and settings) and ``_load_state`` (which re-validates the rules
    against the current schema); the rules then travel inside a saved
    pipeline, as ``rules.jsonl`` and ``cfg`` in the component directory.
    """

    def __call__(self, doc: Doc) -> Doc:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any], where: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def add_rules(self, rules: Iterable[Any], where: str = "rules") -> None:  # pragma: no cover
        raise NotImplementedError

    def configure(
        self,
        nlp: Language,
        name: str,
        model: type[BaseModel],
        inline: Iterable[dict[str, Any]] | None,
        path: str | Path | None,
        what: str,
    ) -> Self:
        """Add the factory's inline and file rules (validated, errors naming file:line) and mark the pipeline.

        When ``spacy.load`` rebuilds a saved pipeline the file is skipped: the
        rules come back from the component directory in ``from_disk``.
        """
        file = None if restored_from_disk(nlp, name) else path
        for where, row in gather_rows(inline, file, what):
            self.add_rules(validate_rows(model, [(where, row)]), where)
        mark_embedded(nlp, name)
        return self

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterable[Doc]:
        """Process a stream of docs (rules need no batching)."""
        for doc in docs:
            yield self(doc)

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        """The rules and settings as msgpack."""
        return srsly.msgpack_dumps(self._state())  # type: ignore[no-any-return]

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()) -> Self:
        """Replace the rules and settings with those of :meth:`to_bytes` output."""
        self._load_state(srsly.msgpack_loads(data), "saved rules")
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        """Write ``rules.jsonl`` and ``cfg`` into the component directory."""
        save_state(path, self._state())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = SimpleFrozenList()) -> Self:
        """Read what :meth:`to_disk` wrote; rule labels are checked against the current schema again."""
        self._load_state(load_state(path), str(Path(path) / "rules.jsonl"))
        return self
