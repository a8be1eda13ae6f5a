"""What a format conversion did: documents written, lines skipped or repaired, and label counts.

Every reader of an external format (CoNLL, CSV, SemEval, Prodigy JSONL) takes a
:class:`ConversionReport` and tells it about each line it could not use
(:meth:`ConversionReport.skip`) or had to fix (:meth:`ConversionReport.repair`).
A skip never stops the conversion unless the report is ``strict``, in which case
the first one raises :class:`ConversionError` naming the file and line, so that
documents already converted are not silently mixed with holes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacy.tokens import Doc

from ...errors import DistilError
from ...textfile import numbered_lines
from .texts import Skip

# Beyond this many labels (BANKING77 has 77) the printed report lists only the most frequent.
MAX_LABELS_SHOWN = 20


class ConversionError(DistilError, ValueError):
    """A conversion could not go on; the message names the file and line where it can."""


@dataclass
class ConversionReport:
    """Counts of one conversion, filled in by the readers and the writer.

    ``examples`` keeps the first few ``file:line`` locations of every skip or
    repair reason, which is what a person needs to go and look at the input.
    """

    strict: bool = False
    max_examples: int = 3
    docs: int = 0
    skips: Counter[str] = field(default_factory=Counter)
    repairs: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    entities: Counter[str] = field(default_factory=Counter)
    relations: Counter[str] = field(default_factory=Counter)
    cats: Counter[str] = field(default_factory=Counter)

    def _note(self, reason: str, source: str, line: int, detail: str | None) -> None:
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(f"{source}:{line}" + (f" ({detail})" if detail else ""))

    def skip(self, source: str, line: int, reason: str, detail: str | None = None) -> None:
        """Count an input line (or document) that was left out; raise instead when strict.

        ``reason`` is what skips are grouped by (keep it free of per-line values);
        ``detail`` goes with the ``file:line`` example.
        """
        where = f"{source}:{line}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise ConversionError(f"{where}; run without --strict to skip and count such lines")
        self.skips[reason] += 1
        self._note(reason, source, line, detail)

    def add_skip(self, item: Skip) -> None:
        """Count a :class:`~distil.pipeline.io.texts.Skip` produced by a shared reader."""
        self.skip(item.source, item.line, item.reason)

    def repair(self, source: str, line: int, reason: str, detail: str | None = None) -> None:
        """Count an input line that was fixed rather than dropped; raise instead when strict."""
        where = f"{source}:{line}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise ConversionError(f"{where}; run without --strict to repair and count such lines")
        self.repairs[reason] += 1
        self._note(reason, source, line, detail)

    def add_doc(self, doc: Doc) -> None:
        """Count a document that will be written, with its entities, relations and accepted categories."""
        self.docs += 1
        self.entities.update(ent.label_ for ent in doc.ents)
        self.relations.update(rel.label for rel in doc._.relations)
        self.cats.update(label for label, score in doc.cats.items() if score >= 0.5)

    @property
    def skipped(self) -> int:
        """How many lines or documents were left out, all reasons together."""
        return sum(self.skips.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (what ``distil convert --report`` writes)."""
        return {
            "docs": self.docs,
            "skipped": dict(self.skips),
            "repaired": dict(self.repairs),
            "examples": {reason: list(places) for reason, places in self.examples.items()},
            "entities": dict(self.entities),
            "relations": dict(self.relations),
            "cats": dict(self.cats),
        }

    def format(self) -> str:
        """A human-readable summary, one fact a line."""
        lines = [f"docs written: {self.docs}"]
        for title, counter in (("skipped", self.skips), ("repaired", self.repairs)):
            total = sum(counter.values())
            lines.append(f"{title}: {total}")
            for reason, count in counter.most_common():
                lines.append(f"  {count:>6}  {reason}  (e.g. {', '.join(self.examples.get(reason, []))})")
        for title, counter in (("entities", self.entities), ("relations", self.relations), ("cats", self.cats)):
            lines.append(f"{title}: {sum(counter.values())}")
            ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            for label, count in ranked[:MAX_LABELS_SHOWN]:
                lines.append(f"  {count:>6}  {label}")
            if len(ranked) > MAX_LABELS_SHOWN:
                lines.append(f"  ... and {len(ranked) - MAX_LABELS_SHOWN} more labels (all of them in --report)")
        return "\n".join(lines)


def read_lines(path: Path, report: ConversionReport) -> Iterator[tuple[int, str]]:
    """The lines of a text file as ``(number, text)``, without line ends or a leading BOM.

    A line that is not valid UTF-8 is counted as a skip naming the file, line and
    byte, and left out; the rest of the file is still read.
    """
    with path.open("rb") as stream:
        for number, raw in numbered_lines(stream):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                report.skip(str(path), number, "invalid UTF-8", f"byte {err.start}")
