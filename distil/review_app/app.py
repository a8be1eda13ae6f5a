"""The FastAPI app of ``distil review serve``: the page, its JSON API, the token and the browser-side guards.

Routes (every one but ``/healthz`` and ``/static`` asks for the token when the
server has one):

================================  ==========================================================================
route                             what
================================  ==========================================================================
``GET /``                         the page: the reviewer's first undecided document (``?at=N``: the N-th)
``GET /api/document``             that document as JSON (``?at=N``), with its rendered fragment
``POST /api/edit``                one edit of the page's draft (add, remove, relabel an entity; relations;
                                  categories): the new draft and its fragment; nothing is saved
``POST /api/decisions``           accept, reject or correct a document: saved to the store and SQLite
``GET /api/decisions``            every saved decision (``?reviewer=NAME``: one reviewer's)
``GET /api/agreement``            each reviewer against the teacher, and reviewers against each other
``POST /api/login``               trade the token for a session cookie (the page's token form)
================================  ==========================================================================

Refusals are ``{"detail": "..."}`` with a status: 422 for a write the schema
or the tokens do not allow (a label outside the schema, a span off token
boundaries), 404 for an unknown document, 401 for a missing or wrong token,
415 for a body not sent as JSON.

Who reviews: ``?reviewer=NAME`` on the page (kept in a cookie), the
``X-Distil-Reviewer`` header or the ``reviewer`` field of a decision, else the
server's ``--reviewer``.

Browser-side guards: the page runs no inline script (a Content-Security-Policy
allows the server's own script only), writes need a JSON body (a cross-site
form cannot send one without a CORS preflight, which this server never
grants), cookies are ``SameSite=Strict`` and ``HttpOnly``, and on loopback
only requests addressed to a loopback name are answered (a DNS-rebinding page
cannot reach the server through its own host name).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional, Union

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..about import __version__
from .decisions import DecisionRow
from .edits import EditError
from .models import (
    DecisionBody,
    DecisionRequest,
    DecisionResponse,
    DocumentResponse,
    EditRequest,
    EditResponse,
    ErrorResponse,
    LoginRequest,
    ProgressBody,
)
from .render import document_html, login_html, page_html
from .session import ReviewAppError, ReviewSession, UnknownDocument

REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
REVIEWER_COOKIE = "distil_reviewer"
SESSION_COOKIE = "distil_review_session"
REVIEWER_HEADER = "x-distil-reviewer"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def check_reviewer(name: str) -> str:
    """``name`` if it can name a reviewer (letters, digits, ``. _ @ -``, at most 64); else an error saying so."""
    if not REVIEWER_NAME.match(name):
        raise ReviewAppError(
            f"reviewer name {name[:80]!r} is not usable: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a ``--host`` value) is reachable from this machine only."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


def _progress(session: ReviewSession, reviewer: str) -> ProgressBody:
    p = session.progress(reviewer)
    return ProgressBody(total=p.total, decided=p.decided, accepted=p.accepted, corrected=p.corrected,
                        rejected=p.rejected)


def _decision(row: DecisionRow) -> DecisionBody:
    return DecisionBody(id=row.id, reviewer=row.reviewer, key=row.key, decision=row.decision, record=row.record,
                        created_at=row.created_at)


def create_app(session: ReviewSession, *, reviewer: str, token: Optional[str] = None,
               host: str = "127.0.0.1") -> FastAPI:
    """The ASGI app serving ``session`` for ``reviewer`` (the default one), guarded by ``token`` when given.

    ``host`` is the address the server listens on: on a loopback address,
    requests must name a loopback host (see the module docstring).
    """
    check_reviewer(reviewer)
    # The cookie holds a value derived from the token, not the token: a cookie read off a disk is no token.
    session_value = hmac.new(token.encode("utf-8"), b"distil review session", hashlib.sha256).hexdigest() if token else ""
    app = FastAPI(
        title="distil review serve", version=__version__,
        description="Review the annotations of a distil annotation directory, one document at a time.",
        # Swagger UI and ReDoc load scripts from a CDN, which the page's CSP (and an offline machine) refuses;
        # /openapi.json stays.
        docs_url=None, redoc_url=None,
    )
    if is_loopback(host):
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_NAMES, host])

    @app.middleware("http")
    async def guard_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(UnknownDocument)
    async def unknown(_: Request, err: UnknownDocument) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(ReviewAppError)
    async def refused(_: Request, err: ReviewAppError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(EditError)
    async def not_allowed(_: Request, err: EditError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    def authorized(request: Request) -> bool:
        if not token:
            return True
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return True
        # Constant-time comparisons: the answer's timing does not tell how much of a guess was right.
        return hmac.compare_digest(request.cookies.get(SESSION_COOKIE, "").encode(), session_value.encode())

    def require_token(request: Request) -> None:
        if not authorized(request):
            raise HTTPException(401, "missing or wrong token: send the header Authorization: Bearer TOKEN, with "
                                "the value of the server's --token-env variable",
                                headers={"WWW-Authenticate": "Bearer"})

    def require_json(request: Request) -> None:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise HTTPException(415, f"send the body as JSON with Content-Type: application/json (got {media or 'none'})")

    def reviewer_of(request: Request, given: Optional[str] = None) -> str:
        name = (given or request.query_params.get("reviewer") or request.headers.get(REVIEWER_HEADER)
                or request.cookies.get(REVIEWER_COOKIE) or reviewer)
        return check_reviewer(name)

    def position(at: Optional[int], who: str) -> int:
        if at is None:
            return session.resume_position(who)
        if not 1 <= at <= session.total:
            raise UnknownDocument(f"there is no document {at}; the review has {session.total} (give ?at=1..{session.total})")
        return at - 1

    refusals: dict[Union[int, str], dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text}
        for code, text in [(401, "Missing or wrong token."), (404, "No such document."),
                           (415, "The body was not sent as JSON."),
                           (422, "A label outside the schema, a span off token boundaries, a malformed body.")]
    }
    guarded = [Depends(require_token)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, at: Optional[int] = None,
             came_from: Optional[int] = Query(None, alias="from")) -> Response:
        if not authorized(request):
            return HTMLResponse(login_html(), status_code=401)
        who = reviewer_of(request)
        if at is not None:
            at = min(max(at, 1), session.total)
        where = session.resume_position(who) if at is None else at - 1
        state = session.document(where, who) if where < session.total else None
        response = HTMLResponse(page_html(session, who, state, came_from=came_from))
        if "reviewer" in request.query_params:
            response.set_cookie(REVIEWER_COOKIE, who, httponly=True, samesite="strict")
        return response

    @app.post("/api/login", status_code=204, responses=refusals, dependencies=[Depends(require_json)])
    def login(body: LoginRequest) -> Response:
        """Check the token and set the session cookie the page sends from then on."""
        if not token or not hmac.compare_digest(body.token.encode(), token.encode()):
            raise HTTPException(401, "wrong token: give the value of the server's --token-env variable")
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, session_value, httponly=True, samesite="strict")
        return response

    @app.get("/api/document", response_model=DocumentResponse, responses=refusals, dependencies=guarded)
    def document(request: Request, at: Optional[int] = Query(None, description="1-based place in the order.")
                 ) -> DocumentResponse:
        """A document of the review (default: the first the reviewer has not decided)."""
        who = reviewer_of(request)
        where = position(at, who)
        if where >= session.total:
            raise UnknownDocument(f"{who} has decided all {session.total} documents; ask for one with ?at=N")
        state = session.document(where, who)
        return DocumentResponse(
            position=where + 1, total=session.total, key=state.key, order=session.order, record=state.record,
            teacher=state.teacher, decision=_decision(state.decision) if state.decision else None,
            confidence=state.confidence, disagreement=state.disagreement, note=state.note,
            html=document_html(session, state.record, state.teacher), progress=_progress(session, who),
        )

    @app.post("/api/edit", response_model=EditResponse, responses=refusals,
              dependencies=[*guarded, Depends(require_json)])
    def edit(body: EditRequest) -> EditResponse:
        """Apply one edit to the page's draft of a document and render it; nothing is saved."""
        record = session.edit(body.key, body.record, body.op)
        teacher, _ = session.teacher_view(body.key)
        return EditResponse(record=record, html=document_html(session, record, teacher))

    @app.post("/api/decisions", response_model=DecisionResponse, responses=refusals,
              dependencies=[*guarded, Depends(require_json)])
    def decide(body: DecisionRequest, request: Request) -> DecisionResponse:
        """Save a decision (written to the annotation store and to review.sqlite before the answer)."""
        who = reviewer_of(request, body.reviewer)
        row = session.decide(who, body.key, body.decision, body.record)
        following = session.next_position(who, session.position_of(body.key))
        return DecisionResponse(
            saved=_decision(row), next=None if following is None else following + 1,
            progress=_progress(session, who), agreement=session.teacher_agreement(who),
        )

    @app.get("/api/decisions", response_model=list[DecisionBody], responses=refusals, dependencies=guarded)
    def decisions(reviewer: Optional[str] = None) -> list[DecisionBody]:
        """Every saved decision, oldest first (``?reviewer=NAME``: one reviewer's)."""
        return [_decision(row) for row in session.decisions(check_reviewer(reviewer) if reviewer else None)]

    @app.get("/api/agreement", responses=refusals, dependencies=guarded)
    def agreement() -> dict[str, Any]:
        """Each reviewer against the teacher (F1 per task, the reviewer as gold) and reviewers against each other."""
        between = session.reviewer_agreement()
        return {"teacher": {who: session.teacher_agreement(who) for who in between["reviewers"]},
                "reviewers": between}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # no icon; a 404 in every browser console would hide real errors

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "alive"}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
