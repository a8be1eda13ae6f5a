"""The one place where every reader of a text input file opens it: BOM, emptiness, JSON arrays, binaries.

Editors on Windows and Excel's "CSV UTF-8" write a UTF-8 byte order mark at
the start of a file. Left in, it becomes part of the first text (shifting every
character offset by one), of the first CSV column name, or of the first JSON
line. Every reader (``run``/``annotate`` inputs, ``convert``'s formats, review
files, corpora of records) goes through :func:`numbered_lines`,
:func:`open_text` or :func:`read_text`, so the mark is dropped the same way
everywhere. The checks for an empty file, a JSON array where JSONL is expected
and a binary file given as text live here too, so that each command says the
same thing about the same mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO, Union

from .errors import DistilError

UTF8_BOM = b"\xef\xbb\xbf"
# Enough to see a NUL byte in any binary format (DocBin, gzip, zip, PDF) without reading a large file.
_SNIFF_BYTES = 8192

PathLike = Union[str, Path]


class InputError(DistilError, ValueError):
    """An input file cannot be read as the command expects; the message names the file and the fix."""


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The lines of a binary stream as ``(number, raw bytes)``, 1-based, without line ends or a leading BOM."""
    for number, raw in enumerate(stream, start=1):
        raw = raw.rstrip(b"\r\n")
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        yield number, raw


def open_text(path: PathLike, *, errors: str = "strict") -> TextIO:
    """Open a UTF-8 text file for reading with a leading BOM dropped (``newline=""`` for the csv module)."""
    return Path(path).open(encoding="utf-8-sig", errors=errors, newline="")


def read_text(path: PathLike) -> str:
    """The whole text of a UTF-8 file without a leading BOM; raises ``UnicodeDecodeError`` on bad bytes."""
    return Path(path).read_bytes().removeprefix(UTF8_BOM).decode("utf-8")


def first_content_line(path: PathLike) -> bytes | None:
    """The first line of a file that is not blank (BOM dropped, stripped), or ``None`` when it has none."""
    with Path(path).open("rb") as stream:
        for _, raw in numbered_lines(stream):
            if raw.strip():
                return raw.strip()
    return None


def empty_message(source: str) -> str:
    """What every command says about an input with no content."""
    return f"{source}: input is empty (no non-blank line); give a file with one document or record a line"


def json_array_message(source: str) -> str:
    """What every command says when it gets a JSON array where it reads JSON Lines."""
    path = Path(source)
    # Never suggest a command that would overwrite the file it reads.
    target = path.with_suffix(".jsonl") if path.suffix.lower() != ".jsonl" else path.with_name(f"{path.stem}.lines.jsonl")
    return (
        f"{source}: this is a JSON array; give one JSON object per line (JSONL), "
        f"e.g. convert it with: jq -c '.[]' {source} > {target}"
    )


def is_binary(path: PathLike) -> bool:
    """Whether a file looks binary (a NUL byte near its start), so that it is not read as lines of text."""
    with Path(path).open("rb") as stream:
        return b"\x00" in stream.read(_SNIFF_BYTES)


def check_json_lines(path: PathLike) -> None:
    """Raise :class:`InputError` unless ``path`` can be JSON Lines: not empty, not binary, not a JSON array."""
    source = str(path)
    if is_binary(path):
        raise InputError(f"{source}: a binary file, not JSON Lines text")
    first = first_content_line(path)
    if first is None:
        raise InputError(empty_message(source))
    if first.startswith(b"["):
        raise InputError(json_array_message(source))
