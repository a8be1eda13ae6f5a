"""The base class of every error a user can cause and fix.

The CLI prints a :class:`DistilError` as one ``error: ...`` line with no
traceback (``--debug`` or ``DISTIL_DEBUG=1`` shows it), so every error that
stems from user input (a config, a corpus, a file, an option) derives from it
and says what is wrong and how to fix it, naming the offending value. Errors
that are not a ``DistilError`` are bugs in distil and keep their traceback.
"""

from __future__ import annotations


class DistilError(Exception):
    """An error caused by user input; its message names the problem and the fix."""
