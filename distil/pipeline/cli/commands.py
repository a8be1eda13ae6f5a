"""Import every command module so that it registers itself on the app."""

from . import annotate, assemble, compare, convert, evaluate, package, review, run, sample, schema  # noqa: F401
from . import export, train  # noqa: F401
