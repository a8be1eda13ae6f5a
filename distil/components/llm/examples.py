"""Few-shot examples for LLM tasks, read from JSONL records or a DocBin.

A path starting with ``distil:`` names a file shipped in the package under
``distil/prompts/examples/`` (e.g. ``distil:ner_wnut17.jsonl``), so configs can
use the bundled examples from any working directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from ...corpus import CorpusError, read_docs
from .prompting import PROMPTS_DIR

PACKAGE_PREFIX = "distil:"


@lru_cache(maxsize=1)
def _tokenizer() -> Language:
    # A Language, not a bare Vocab: JSONL records are then tokenised with their exact text.
    return spacy.blank("en")


def resolve_examples_path(path: str) -> Path:
    """The file a configured examples path refers to; raises ``ValueError`` naming it if missing."""
    if path.startswith(PACKAGE_PREFIX):
        file = PROMPTS_DIR / "examples" / path[len(PACKAGE_PREFIX) :]
    else:
        file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(
            f"few-shot examples file not found: {file} (from {path!r}). Give a .jsonl records file or a "
            f".spacy DocBin, or a bundled file as 'distil:<name>'."
        )
    return file


def load_examples(path: Optional[str]) -> list[Doc]:
    """The example Docs in the file at ``path`` (none when ``path`` is empty)."""
    if not path:
        return []
    file = resolve_examples_path(path)
    try:
        return list(read_docs(file, _tokenizer()))
    except CorpusError as err:
        raise ValueError(f"few-shot examples {file}: {err}") from err
