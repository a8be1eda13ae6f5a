"""``distil review serve``: correct the teacher's annotations in the browser, one document at a time.

The contract the rest of the code relies on:

- The server owns the annotation directory while it runs: it holds the
  store's lock (:class:`distil.pipeline.store.AnnotationStore`), so ``distil
  annotate`` and ``review import`` wait for it to stop.
- Every decision is saved before it is answered, twice: the reviewed record
  appended to ``records.jsonl`` (``meta.reviewed``, ``meta.review`` =
  ``accepted`` / ``corrected`` / ``rejected``, ``meta.reviewer``), which
  ``distil train --reviewed-weight`` reads as is (rejected documents are left
  out of training), and a row in ``review.sqlite``
  (:mod:`distil.review_app.decisions`), which keeps every reviewer's
  decisions apart. A killed server loses nothing and resumes at the
  reviewer's first undecided document, in the same order.
- The order is ``review export``'s and ``review simulate``'s
  (:func:`distil.pipeline.review.review_order`), computed from the teacher's
  records as they were before any review.
- Written records are checked against the config's schema and the tokens
  (:mod:`distil.review_app.edits`); document text is always escaped
  (:mod:`distil.review_app.render`).

FastAPI and uvicorn come with the ``serve`` extra.
"""

from __future__ import annotations

from .app import create_app
from .server import read_token, run_review_server
from .session import ReviewAppError, ReviewSession

__all__ = ["ReviewAppError", "ReviewSession", "create_app", "read_token", "run_review_server"]
