"""``python -m distil``: the same as the ``distil`` console script."""

from .pipeline.cli import main

main()
