"""The FastAPI app of ``distil serve``: routes, limits, auth, access log and the pipeline's lifecycle.

Status answers (docs/serve.md shows them to users; tests/test_serve.py pins them):

=====================================  ======  =====================================================
condition                              status  detail
=====================================  ======  =====================================================
all documents annotated                200     ``records``, one per text, in order
some documents failed in the pipeline  200     ``records[i]`` is null, ``errors`` says why
every document failed in the pipeline  500     ``pipeline error: ...`` and ``errors``
queue full                             503     ``server busy: ...``, with ``Retry-After``
loading or shutting down               503     with ``Retry-After``
request past its deadline              504     ``request past its deadline of ... s``
text longer than the limit             413     names the text and both lengths
more texts than ``--max-texts``        413
body over ``--max-body-bytes``         413     before the body is parsed
body not sent as JSON                  415     ``send the body as JSON with Content-Type: ...``
malformed JSON, wrong types            422     FastAPI's list, each error with its ``loc`` (field)
empty ``text``, or every one of texts  422     ``empty text`` / ``every text is empty``
one empty text among ``texts``         200     ``records[i]`` is null, ``errors``: ``empty text``
missing or wrong bearer token          401     with ``WWW-Authenticate: Bearer``
=====================================  ======  =====================================================
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Optional, Union

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from spacy.language import Language

from ..about import __version__
from ..pipeline.batch import DocError, process
from ..pipeline.config import load_pipeline
from ..pipeline.tasks import pipeline_tasks
from ..pipeline.usage import collect_usage
from ..records import dumps, record_json_schema, to_record
from .batching import Batcher, BatchFailure, Closed, QueueFull
from .metrics import ServeMetrics
from .models import AnnotateRequest, AnnotateResponse, ComponentSchema, ErrorResponse, Health, SchemaResponse
from .settings import DRAIN_MARGIN_S, ServeSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# One JSON record of `distil run` per document, or the reason its document failed.
Outcome = Union[str, DocError[str]]

log = logging.getLogger("distil.serve")
access_log = logging.getLogger("distil.serve.access")
WARM_UP_TEXT = "Warm-up: Apple hired Tim Cook in Cupertino."
# A client's X-Request-ID is echoed only if it is short and plain (it goes into log lines).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STARTED = "distil.started"
_REQUEST_ID_KEY = "distil.request_id"
_DOCS_KEY = "distil.docs"


class ServeState:
    """The pipeline, its worker thread, the batcher and the metrics of one app; loaded at startup."""

    def __init__(self, settings: ServeSettings, nlp: Optional[Language]) -> None:
        self.settings = settings
        self.nlp = nlp
        self.token = settings.token()
        self.metrics = ServeMetrics()
        # One thread: spaCy components (and onnxruntime sessions, llama.cpp models) are not promised to be
        # thread-safe, and a second thread would only fight the first for the same cores.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distil-pipeline")
        self.batcher: Batcher[Outcome] = Batcher(
            self.run_batch, self.executor, self.metrics, max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms, max_queue=settings.max_queue,
        )
        self.ready = False
        self.max_text_chars = settings.max_text_chars or 0
        self.schema: Optional[SchemaResponse] = None
        self._meters_usage = False

    async def start(self) -> None:
        """Load the pipeline (unless given), warm it up on the worker thread, then start batching."""
        loop = asyncio.get_running_loop()
        if self.nlp is None:
            self.nlp = await loop.run_in_executor(
                self.executor, load_pipeline, self.settings.source, self.settings.overrides
            )
        nlp = self.nlp
        # nlp.max_length is the ceiling: process() would refuse a longer text anyway, one document at a time.
        self.max_text_chars = min(self.settings.max_text_chars or nlp.max_length, nlp.max_length)
        self._meters_usage = bool(collect_usage(nlp))
        self.schema = pipeline_schema(nlp)
        await loop.run_in_executor(self.executor, self.run_batch, [WARM_UP_TEXT])
        self.batcher.start()
        self.ready = True
        self.metrics.ready.set(1)
        log.info("pipeline %s ready: %s", self.settings.source, ", ".join(nlp.pipe_names))

    async def stop(self) -> None:
        """Finish every queued document, then release the worker thread (uvicorn has drained the requests)."""
        self.ready = False
        self.metrics.ready.set(0)
        # Bounded: the requests themselves were answered 504 at their deadline, so a batch still running
        # after it plus a margin has hung; leave its thread behind rather than never exit.
        drained = await self.batcher.drain(timeout_s=self.settings.timeout_s + DRAIN_MARGIN_S)
        self.executor.shutdown(wait=drained, cancel_futures=True)
        self.metrics.worker_exited()

    def run_batch(self, texts: list[str]) -> list[Outcome]:
        """Run the pipeline over one batch (on the worker thread): a record line, or the failure, per text."""
        assert self.nlp is not None
        outcomes: list[Outcome] = []
        for _, result in process(self.nlp, texts, lambda text: text, batch_size=len(texts)):
            outcomes.append(result if isinstance(result, DocError) else dumps(to_record(result)))
        if self._meters_usage:
            self.metrics.observe_usage(collect_usage(self.nlp))
        return outcomes


def pipeline_schema(nlp: Language) -> SchemaResponse:
    """The task schema of every component that performs a task, and the record's JSON Schema."""
    components: dict[str, ComponentSchema] = {}
    pipes = dict(nlp.pipeline)
    for name, task in pipeline_tasks(nlp).items():
        pipe = pipes[name]
        schema = getattr(pipe, "schema", None) or getattr(getattr(pipe, "task", None), "schema", None)
        dumped = schema.model_dump(mode="json") if isinstance(schema, BaseModel) else None
        components[name] = ComponentSchema(task=task, schema=dumped)
    return SchemaResponse(pipeline=list(nlp.pipe_names), components=components, record=record_json_schema())


class ServeMiddleware:
    """Request id, body size limit, access log and request metrics, as a plain ASGI middleware.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: it adds no task
    per request, and it can refuse an oversized body while reading it, before
    FastAPI parses anything (a client may send no Content-Length, or a false one).
    """

    def __init__(self, app: ASGIApp, *, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; only HTTP requests are measured and limited."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope[_STARTED] = started
        scope[_REQUEST_ID_KEY] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            replay = await self._read_body(scope, receive, headers)
            if isinstance(replay, Response):
                await replay(scope, receive, send_with_id)
            else:
                await self.app(scope, replay, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.state.metrics.observe_request(scope.get("path", ""), status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(json.dumps({
                    "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "request_id": request_id, "method": scope.get("method"), "path": scope.get("path"),
                    "status": status, "duration_ms": round(elapsed * 1000, 2), "docs": scope.get(_DOCS_KEY),
                    "client": client[0] if client else None,
                }))

    async def _read_body(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]) -> Union[Receive, Response]:
        """The whole body, replayed to the app; or a 413 response once it passes the limit."""
        limit = self.state.settings.max_body_bytes
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return receive
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json" and not media_type.endswith(b"+json"):
            # FastAPI would not parse such a body as JSON (its guard against cross-site form posts) and answer
            # a puzzling 422 on the whole body; say what is missing instead.
            return JSONResponse(
                {"detail": f"send the body as JSON with Content-Type: application/json (got {media_type.decode('latin-1') or 'none'})"},
                status_code=415,
            )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(int(declared), limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return _too_large(size, limit, at_least=True)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _too_large(size: int, limit: int, *, at_least: bool = False) -> Response:
    more = "more than " if at_least else ""
    return JSONResponse(
        {"detail": f"request body of {more}{size:,} bytes exceeds the limit of {limit:,} bytes (--max-body-bytes)"},
        status_code=413,
    )


def create_app(settings: ServeSettings, nlp: Optional[Language] = None) -> FastAPI:
    """The ASGI app serving ``nlp`` (or the pipeline ``settings.source`` names, loaded at startup).

    Give ``nlp`` to serve a pipeline already loaded (``distil serve`` with one
    worker loads it first, so that a bad config is a plain CLI error); without
    it, each process loads its own at startup (``--workers N``). The pipeline
    is warmed up on one document before ``/readyz`` says ready.
    """
    state = ServeState(settings, nlp)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="distil serve",
        version=__version__,
        description="Annotate texts with a distil pipeline: the same JSON records as `distil run`.",
        lifespan=lifespan,
    )
    app.add_middleware(ServeMiddleware, state=state)
    app.state.distil = state
    bearer = HTTPBearer(auto_error=False, description="Set when the server was started with --token-env.")

    def check_token(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if state.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        # Constant time, so the answer's timing does not tell how much of a guess was right.
        if not hmac.compare_digest(given.encode("utf-8"), state.token.encode("utf-8")):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    refusals: dict[Union[int, str], dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text}
        for code, text in [
            (401, "Missing or wrong bearer token."),
            (413, "Body, text or number of texts over the limit."),
            (415, "The body was not sent with Content-Type: application/json."),
            (422, "Malformed JSON, wrong types, empty text."),
            (500, "Every document of the request failed in the pipeline."),
            (503, "Queue full, loading or shutting down; see Retry-After."),
            (504, "The request passed its deadline."),
        ]
    }

    @app.post("/v1/annotate", response_model=AnnotateResponse, responses=refusals, dependencies=[Depends(check_token)])
    async def annotate(body: AnnotateRequest, request: Request) -> Response:
        """Annotate one text or several; the answer holds one `distil run` record per text, in order."""
        texts = body.all_texts()
        request.scope[_DOCS_KEY] = len(texts)
        if not state.ready:
            raise HTTPException(503, "not ready: loading or shutting down", headers={"Retry-After": "1"})
        check_limits(texts, state)
        # An empty text among others is skipped, as `distil run` skips it: null record, reason "empty text".
        todo = [index for index, text in enumerate(texts) if text.strip()]
        try:
            futures = state.batcher.submit([texts[index] for index in todo])
        except QueueFull as err:
            state.metrics.documents.labels("rejected").inc(len(texts))
            raise HTTPException(503, str(err), headers={"Retry-After": str(err.retry_after_s)}) from None
        except Closed as err:
            state.metrics.documents.labels("rejected").inc(len(texts))
            raise HTTPException(503, str(err), headers={"Retry-After": "1"}) from None
        deadline = request.scope[_STARTED] + settings.timeout_s
        _, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - time.perf_counter()))
        if pending:
            for future in futures:
                future.cancel()  # queued documents of this request are then skipped by the batcher
            state.metrics.documents.labels("timeout").inc(len(futures))
            raise HTTPException(
                504, f"request past its deadline of {settings.timeout_s:g} s "
                f"({len(futures) - len(pending)} of {len(futures)} document(s) done)",
            )
        outcomes: list[Union[Outcome, BatchFailure, None]] = [None] * len(texts)
        for index, future in zip(todo, futures, strict=True):
            outcomes[index] = future.result()
        return answer(outcomes, state)

    @app.get("/v1/schema", response_model=SchemaResponse, dependencies=[Depends(check_token)])
    async def schema() -> SchemaResponse:
        """The served pipeline's components with their task schemas, and the JSON Schema of a record."""
        if state.schema is None:
            raise HTTPException(503, "not ready: loading", headers={"Retry-After": "1"})
        return state.schema

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Alive: the process answers."""
        return Health(status="alive")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    async def readyz() -> Response:
        """Ready: the pipeline is loaded and warmed up, and the server is not shutting down."""
        if state.ready and state.batcher.alive:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/metrics", dependencies=[Depends(check_token)], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        state.metrics.queue_depth.set(state.batcher.depth)
        content, content_type = state.metrics.render()
        return Response(content, media_type=content_type)

    return app


def check_limits(texts: list[str], state: ServeState) -> None:
    """Refuse (413) a request with more texts than ``--max-texts`` or a text longer than the length limit."""
    limit = state.settings.max_texts
    if len(texts) > limit:
        state.metrics.documents.labels("rejected").inc(len(texts))
        raise HTTPException(413, f"{len(texts)} texts in one request exceed the limit of {limit} (--max-texts)")
    for index, text in enumerate(texts):
        if len(text) > state.max_text_chars:
            state.metrics.documents.labels("rejected").inc(len(texts))
            where = "text" if len(texts) == 1 else f"texts[{index}]"
            raise HTTPException(
                413, f"{where} has {len(text):,} characters, over the limit of {state.max_text_chars:,} "
                "(--max-text-chars, at most the pipeline's nlp.max_length); split the document",
            )


def answer(outcomes: list[Union[Outcome, BatchFailure, None]], state: ServeState) -> Response:
    """The response body, assembled from the record lines as ``distil run`` writes them (no re-serialising).

    ``None`` is a text skipped as empty (``distil run``'s reason ``empty text``).
    """
    lines: list[str] = []
    errors: list[dict[str, Any]] = []
    skipped = 0
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, str):
            lines.append(outcome)
        elif outcome is None:
            lines.append("null")
            errors.append({"index": index, "detail": "empty text"})
            skipped += 1
        else:
            lines.append("null")
            errors.append({"index": index, "detail": f"pipeline error: {outcome.reason}"})
    failed = len(errors) - skipped
    if skipped:
        state.metrics.documents.labels("skipped").inc(skipped)
    if failed:
        state.metrics.documents.labels("failed").inc(failed)
    if len(outcomes) > len(errors):
        state.metrics.documents.labels("ok").inc(len(outcomes) - len(errors))
    if failed and len(errors) == len(outcomes):
        return JSONResponse({"detail": errors[0]["detail"], "errors": errors}, status_code=500)
    body = '{"records":[' + ",".join(lines) + '],"errors":' + json.dumps(errors, ensure_ascii=False) + "}"
    return Response(body.encode("utf-8"), media_type="application/json")


def app_from_env() -> FastAPI:
    """The app factory of ``--workers N``: each worker process builds its app from :data:`SETTINGS_ENV`.

    It imports the ``--code`` file, if any, and leaves loading the pipeline to
    the app's startup, so each worker loads it once.
    """
    settings = ServeSettings.from_env()
    code = settings.code_path()
    if code is not None:
        from spacy.cli._util import import_code

        import_code(code)
    return create_app(settings)
