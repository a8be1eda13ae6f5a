"""Where annotation runs besides this process: ``--engine ray`` (:mod:`distil.engines.ray`).

The local engine, the default, is :class:`distil.pipeline.annotate.LocalEngine`;
an engine only decides where blocks of documents are annotated, and the
driver in :func:`distil.pipeline.annotate.annotate` stores them.
"""
