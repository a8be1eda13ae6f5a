"""``distil serve``: any pipeline as a production HTTP service.

The contract the rest of the code relies on:

- ``POST /v1/annotate`` answers with the same JSON records as ``distil run``
  (:func:`distil.records.to_record`, serialised by :func:`distil.records.dumps`),
  one per input text, in order.
- Documents of concurrent requests are grouped into ``nlp.pipe`` batches by one
  batcher task (:mod:`distil.serve.batching`); the pipeline only ever runs on
  one worker thread, off the event loop, so components need not be thread-safe.
- Batch isolation is :func:`distil.pipeline.batch.process`: a document that
  makes the pipeline raise fails alone.
- Every refusal is an HTTP status with a one-line reason, decided before the
  pipeline runs (see :mod:`distil.serve.app`'s status table); none of them
  stops the process.

:func:`create_app` builds the ASGI app; :func:`run_server` runs it on uvicorn
(one process, or ``--workers N`` processes each loading the pipeline once).
"""

from __future__ import annotations

from .app import create_app
from .server import run_server
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "run_server"]
