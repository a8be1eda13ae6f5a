"""Read and write annotated corpora: DocBin (``.spacy``), JSONL records (``.jsonl``), annotation directories.

These are the formats every distil command takes for annotated documents
(gold data for ``evaluate``, training data for ``train``, the output of
``convert``, few-shot example files of the LLM tasks). DocBin keeps
``user_data`` so entity scores, relations and failures survive. Reading a
corpus is a core concern: the backends (LLM examples, encoder training) and the
application layer all read through this module, so a file means the same thing
to each of them.

An annotation directory written by ``distil annotate`` (and merged by ``distil
review import`` or ``review simulate``) can be given directly for training.
Documents a person reviewed carry ``meta.reviewed = true``: training can keep
only those, or weight them by repeating them, so that corrected labels count
more than the teacher's. Documents the teacher failed on (``meta.failures``)
are left out of training and counted: a failed answer is never a label. So
are documents a reviewer rejected (``meta.review = "rejected"``, written by
``distil review serve``): a person said their text is not to be learnt from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from pydantic import ValidationError
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .annotations import FAILURES_KEY
from .errors import DistilError
from .records import META_KEY, DocRecord, dumps, from_record, to_record
from .textfile import InputError, check_json_lines, numbered_lines

# The records file of an annotation directory (``distil annotate --output DIR``).
RECORDS = "records.jsonl"


class CorpusError(DistilError, ValueError):
    """A corpus file could not be read; the message names the file and line."""


PathLike = Union[str, Path]


def read_docs(path: PathLike, nlp_or_vocab: Union[Language, Vocab]) -> Iterator[Doc]:
    """Yield the Docs of a ``.spacy`` DocBin or a ``.jsonl`` file of records.

    A JSONL line that is not a valid record raises :class:`CorpusError` naming
    the file and line: gold data with holes would silently skew every score.
    A line that is JSON but not a distil record (another tool's JSONL, a
    Prodigy task) says so and points to ``distil convert``; an empty file, a
    JSON array or a binary file is refused before the first document.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if path.is_dir():
        if not (path / RECORDS).exists():
            raise CorpusError(
                f"{path} is a folder without {RECORDS}; give a .spacy or .jsonl corpus file or a "
                "`distil annotate` output directory"
            )
        for record in read_annotation_records(path):
            yield from_record(record, nlp_or_vocab)
        return
    vocab = nlp_or_vocab.vocab if isinstance(nlp_or_vocab, Language) else nlp_or_vocab
    if path.suffix == ".spacy":
        try:
            doc_bin = DocBin(store_user_data=True).from_disk(path)
        except Exception as err:
            raise CorpusError(f"{path}: not a readable DocBin ({err})") from err
        if len(doc_bin) == 0:
            raise CorpusError(f"{path}: input is empty (the DocBin holds no documents)")
        yield from doc_bin.get_docs(vocab)
        return
    if path.suffix in {".jsonl", ".json", ".ndjson"}:
        try:
            check_json_lines(path)
        except InputError as err:
            raise CorpusError(str(err)) from None
        with path.open("rb") as stream:
            for number, raw in numbered_lines(stream):
                if raw.strip():
                    yield _parse_record(raw, path, number, nlp_or_vocab)
        return
    raise CorpusError(f"{path}: unknown corpus format {path.suffix!r}; use .spacy (DocBin) or .jsonl (records)")


def text_key(text: str) -> str:
    """The identity of an input text in an annotation directory: duplicates share it and are annotated once."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def record_key(raw: bytes, where: str) -> str:
    """The key of one line of an annotation directory's records: ``meta.key``, else the key of its text.

    ``distil annotate`` writes ``meta.key``; records put in a directory by
    hand or by another tool are keyed by their text, the same way.
    """
    try:
        data = json.loads(raw)
        key = (data.get("meta") or {}).get("key") or text_key(data["text"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorpusError(f"{where}: not a distil record ({type(err).__name__}: {err})") from None
    if not isinstance(key, str):
        raise CorpusError(f"{where}: not a distil record (meta.key is {key!r})")
    return key


def complete_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, line)`` of every complete line of ``path``, streamed.

    A last line without its newline is half of an append that a killed
    writer left behind: it is not a record yet, so it is not yielded (the
    writer that opens the directory next cuts it off).
    """
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return
            yield number, offset, raw
            offset += len(raw)


def read_annotation_records(directory: PathLike) -> Iterator[DocRecord]:
    """The records of an annotation directory, one per input text, in the order they were first written.

    The store appends: a document annotated again (``--retry-failed``) or
    corrected is appended anew, and the last record of a key is the one that
    counts until the writer compacts the file. This is the one read path of
    an annotation directory (``train``, ``evaluate``, ``review``, ``convert``
    all come here). It streams: the first pass keeps only each key's last
    offset, and a file without repeated keys (every compacted one) is read
    straight through on the second.
    """
    path = Path(directory) / RECORDS
    if not path.exists():
        raise CorpusError(f"no annotations at {path}: give a `distil annotate` output directory")
    last: dict[str, int] = {}
    repeated = False
    for number, offset, raw in complete_lines(path):
        if raw.strip():
            key = record_key(raw, f"{path}:{number}")
            repeated = repeated or key in last
            last[key] = offset
    with path.open("rb") as handle:
        if not repeated:
            for number, _, raw in complete_lines(path):
                if raw.strip():
                    yield _store_record(raw, f"{path}:{number}")
            return
        emitted: set[str] = set()
        for number, _, raw in complete_lines(path):
            if not raw.strip():
                continue
            key = record_key(raw, f"{path}:{number}")
            if key in emitted:
                continue
            emitted.add(key)
            handle.seek(last[key])
            yield _store_record(handle.readline(), f"{path} (record {key})")


def _store_record(raw: bytes, where: str) -> DocRecord:
    try:
        return DocRecord.model_validate_json(raw)
    except ValidationError as err:
        raise CorpusError(f"{where}: not a valid record ({str(err).splitlines()[0]})") from None


def _parse_record(raw: bytes, path: Path, number: int, nlp_or_vocab: Union[Language, Vocab]) -> Doc:
    """The Doc of one JSONL line of records; raises :class:`CorpusError` naming ``path:number`` and the fix."""
    where = f"{path}:{number}"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CorpusError(f"{where}: invalid UTF-8 at byte {err.start}") from None
    except json.JSONDecodeError as err:
        raise CorpusError(f"{where}: malformed JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{where}: not a JSON object; a corpus has one distil record a line")
    extra = sorted(set(data) - set(DocRecord.model_fields))
    if "text" not in data or extra:
        found = f"unknown field(s) {', '.join(map(repr, extra))}" if extra else "no 'text' field"
        raise CorpusError(
            f"{where}: not a distil record ({found}; a record has only {', '.join(DocRecord.model_fields)}). "
            f"Convert the file first, e.g. distil convert {path} corpus.spacy --format jsonl (Prodigy-style "
            "tasks; see docs/convert.md for CSV, CoNLL and SemEval)"
        )
    try:
        return from_record(data, nlp_or_vocab)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'record'}: {e['msg']}" for e in err.errors()[:3]
        )
        raise CorpusError(f"{where}: not a valid record ({problems})") from None
    except (ValueError, TypeError) as err:
        raise CorpusError(f"{where}: not a valid record: {err}") from None


def write_docs(docs: Iterable[Doc], path: PathLike) -> int:
    """Write Docs to ``.spacy`` (DocBin with user data) or ``.jsonl`` records; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if path.suffix == ".spacy":
        doc_bin = DocBin(store_user_data=True)
        for doc in docs:
            doc_bin.add(doc)
            count += 1
        doc_bin.to_disk(path)
        return count
    if path.suffix in {".jsonl", ".json", ".ndjson"}:
        with path.open("w", encoding="utf-8") as out:
            for doc in docs:
                out.write(dumps(to_record(doc)) + "\n")
                count += 1
        return count
    raise CorpusError(f"{path}: unknown corpus format {path.suffix!r}; use .spacy (DocBin) or .jsonl (records)")


def is_reviewed(doc: Doc) -> bool:
    """Whether a person (or a simulated review) corrected this document."""
    return bool((doc.user_data.get(META_KEY) or {}).get("reviewed"))


# The tasks whose failure spoils a document's labels for training a model of each task: relations are
# predicted between the entities, so a failed NER answer leaves the relations of the document incomplete too.
# "any" is a failure of the whole pipeline on the document (``distil annotate`` writes it): nothing was labelled.
_SPOILED_BY: dict[str, frozenset[str]] = {
    "ner": frozenset({"ner", "any"}),
    "textcat": frozenset({"textcat", "any"}),
    "rel": frozenset({"ner", "rel", "any"}),
}


def has_teacher_failure(doc: Doc, task: Optional[str] = None) -> bool:
    """Whether a component failed on ``doc`` in a way that spoils its labels for ``task`` (any failure without a task).

    A teacher that failed on a document (invalid JSON, a timeout) wrote no
    answer, so the document reads as "no entity", "no relation" or "no
    category": training on it would teach the student to miss exactly what
    the teacher could not handle. A reviewed document is never spoiled (the
    review replaced the teacher's labels and cleared its failures).
    """
    if is_reviewed(doc):
        return False
    failures = doc.user_data.get(FAILURES_KEY) or []
    if task is None:
        return bool(failures)
    spoiling = _SPOILED_BY.get(task, frozenset({task, "any"}))
    return any(str(failure.get("task")) in spoiling for failure in failures)


@dataclass(frozen=True)
class TrainingSet:
    """The documents ``distil train`` trains on, and how many were left out: the teacher failed, a reviewer rejected."""

    docs: list[Doc]
    failed: int
    reviewed: int
    rejected: int = 0


# ``meta.review`` of a document a reviewer rejected (``distil review serve``): never trained on.
REJECTED = "rejected"


def is_rejected(doc: Doc) -> bool:
    """Whether a reviewer rejected this document (``meta.review = "rejected"``): training leaves it out."""
    return (doc.user_data.get(META_KEY) or {}).get("review") == REJECTED


HUMAN_LABELLED = "human-labelled"


def mark_human_labelled(doc: Doc) -> Doc:
    """Mark a gold document as reviewed (``meta.review = "human-labelled"``): a person labelled it, no teacher did."""
    meta = dict(doc.user_data.get(META_KEY) or {})
    meta.update(reviewed=True, review=meta.get("review", HUMAN_LABELLED))
    doc.user_data[META_KEY] = meta
    return doc


def read_training_set(
    path: PathLike,
    nlp: Language,
    *,
    task: Optional[str] = None,
    reviewed_only: bool = False,
    reviewed_weight: int = 1,
    human: Iterable[PathLike] = (),
) -> TrainingSet:
    """The training Docs of a corpus file or an annotation directory, as ``distil train`` reads them.

    Documents with a teacher failure for ``task`` (:func:`has_teacher_failure`;
    any failure when ``task`` is None) are left out and counted in
    ``failed``: a failed answer is never a label. Documents a reviewer
    rejected (:func:`is_rejected`) are left out and counted in ``rejected``,
    whatever ``reviewed_only`` and ``reviewed_weight`` say. ``reviewed_only`` keeps the
    reviewed documents alone; ``reviewed_weight`` = N > 1 repeats each
    reviewed document N times in the training set. ``human`` names more
    corpus files of gold documents a person labelled (the seed pool a teacher
    retrieved its examples from): they join the training set as reviewed
    documents, so ``reviewed_only`` with them trains on human labels alone.
    """
    path = Path(path)
    if reviewed_weight < 1:
        raise ValueError(f"reviewed_weight must be at least 1, got {reviewed_weight}")
    docs = list(read_docs(path, nlp))
    docs += [mark_human_labelled(doc) for extra in human for doc in read_docs(extra, nlp)]
    kept = [doc for doc in docs if not is_rejected(doc)]
    rejected = len(docs) - len(kept)
    usable = [doc for doc in kept if not has_teacher_failure(doc, task)]
    failed = len(kept) - len(usable)
    reviewed = [doc for doc in usable if is_reviewed(doc)]
    if reviewed_only:
        if not reviewed:
            raise CorpusError(f"{path}: no reviewed documents (meta.reviewed) to train on with --reviewed-only")
        return TrainingSet(reviewed, failed, len(reviewed), rejected)
    weighted = usable + [doc for doc in reviewed for _ in range(reviewed_weight - 1)]
    return TrainingSet(weighted, failed, len(reviewed), rejected)


def read_training_docs(
    path: PathLike, nlp: Language, *, reviewed_only: bool = False, reviewed_weight: int = 1
) -> list[Doc]:
    """The training Docs of :func:`read_training_set` (documents with any teacher failure left out)."""
    return read_training_set(path, nlp, reviewed_only=reviewed_only, reviewed_weight=reviewed_weight).docs
