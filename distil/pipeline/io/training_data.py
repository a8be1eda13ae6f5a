"""Training documents from gold corpora or from (reviewed) annotations, as `distil train` reads them.

An annotation directory written by ``distil annotate`` (and merged by ``distil
review import`` or ``review simulate``) can be given directly. Documents a
person reviewed carry ``meta.reviewed = true``: training can keep only those,
or weight them by repeating them, so that corrected labels count more than the
teacher's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from spacy.language import Language
from spacy.tokens import Doc

from ...records import META_KEY
from .corpus import CorpusError, read_docs

RECORDS = "records.jsonl"


def is_reviewed(doc: Doc) -> bool:
    """Whether a person (or a simulated review) corrected this document."""
    return bool((doc.user_data.get(META_KEY) or {}).get("reviewed"))


def read_training_docs(
    path: Union[str, Path], nlp: Language, *, reviewed_only: bool = False, reviewed_weight: int = 1
) -> list[Doc]:
    """The training Docs of a corpus file or an annotation directory.

    ``reviewed_only`` keeps the reviewed documents alone; ``reviewed_weight``
    = N > 1 repeats each reviewed document N times in the training set.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORDS
    if reviewed_weight < 1:
        raise ValueError(f"reviewed_weight must be at least 1, got {reviewed_weight}")
    docs = list(read_docs(path, nlp))
    reviewed = [doc for doc in docs if is_reviewed(doc)]
    if reviewed_only:
        if not reviewed:
            raise CorpusError(f"{path}: no reviewed documents (meta.reviewed) to train on with --reviewed-only")
        return reviewed
    return docs + [doc for doc in reviewed for _ in range(reviewed_weight - 1)]
