"""Read and write annotated corpora: DocBin (``.spacy``) or JSONL records (``.jsonl``).

These are the two formats every distil command takes for annotated documents
(gold data for ``evaluate``, training data for ``train``, the output of
``convert``). DocBin keeps ``user_data`` so entity scores, relations and
failures survive.
"""

from __future__ import annotations

from ...errors import DistilError
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Union

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from ...records import dumps, from_record, to_record


class CorpusError(DistilError, ValueError):
    """A corpus file could not be read; the message names the file and line."""


PathLike = Union[str, Path]


def read_docs(path: PathLike, nlp_or_vocab: Union[Language, Vocab]) -> Iterator[Doc]:
    """Yield the Docs of a ``.spacy`` DocBin or a ``.jsonl`` file of records.

    A JSONL line that is not a valid record raises :class:`CorpusError` naming
    the file and line: gold data with holes would silently skew every score.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    vocab = nlp_or_vocab.vocab if isinstance(nlp_or_vocab, Language) else nlp_or_vocab
    if path.suffix == ".spacy":
        try:
            doc_bin = DocBin(store_user_data=True).from_disk(path)
        except Exception as err:
            raise CorpusError(f"{path}: not a readable DocBin ({err})") from err
        yield from doc_bin.get_docs(vocab)
        return
    if path.suffix in {".jsonl", ".json", ".ndjson"}:
        with path.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                if not raw.strip():
                    continue
                try:
                    data = json.loads(raw.decode("utf-8"))
                    yield from_record(data, nlp_or_vocab)
                except UnicodeDecodeError as err:
                    raise CorpusError(f"{path}:{number}: invalid UTF-8 at byte {err.start}") from err
                except (ValueError, TypeError) as err:
                    raise CorpusError(f"{path}:{number}: not a valid record: {err}") from err
        return
    raise CorpusError(f"{path}: unknown corpus format {path.suffix!r}; use .spacy (DocBin) or .jsonl (records)")


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
