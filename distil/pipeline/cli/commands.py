"""Import every command module so that it registers itself on the app."""

from . import convert, evaluate, run, schema  # noqa: F401
