"""A fault-injecting OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

Each request to ``POST /v1/chat/completions`` is answered by the next scripted
:class:`Fault` if any are queued, else by ``responder(body)`` (the answer
content) after ``delay`` seconds. Every request is recorded (path, headers,
JSON body) so that tests can check what the client sent.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


class _Server(ThreadingHTTPServer):
    # Many clients connect at once under concurrency: a short listen queue would drop SYNs (1 s retransmits).
    request_queue_size = 128


@dataclass
class Fault:
    """One scripted answer.

    kind: ``status`` (HTTP ``status`` with ``headers``), ``slow`` (sleep
    ``seconds`` then answer normally), ``content`` (HTTP 200 whose message
    content is ``content``: invalid JSON, schema-violating JSON...),
    ``bad_body`` (HTTP 200 whose body is not JSON), ``truncated`` (a body cut
    short of its Content-Length, then the connection closes).
    """

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    content: str = ""


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAIServer:
    """See the module docstring; use as a context manager, ``base_url`` ends in ``/v1``."""

    def __init__(
        self,
        responder: Optional[Callable[[dict[str, Any]], str]] = None,
        delay: float = 0.0,
        logprobs: Optional[Callable[[str], list[tuple[str, float]]]] = None,
    ) -> None:
        self.responder = responder or (lambda body: "{}")
        self.delay = delay
        # When a request asks for ``logprobs``: (token, logprob) pairs of an answer's content.
        self.logprobs = logprobs or fake_logprobs
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str), "an AF_INET server's host is a str"
        return f"http://{host}:{port}/v1"

    def script(self, *faults: Fault) -> None:
        """Queue faults to answer the next requests with, in order."""
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Optional[Fault]:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: Optional[dict[str, str]] = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _answer(self, content: str, body: Optional[dict[str, Any]] = None) -> bytes:
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}
                if body and body.get("logprobs"):
                    top = int(body.get("top_logprobs") or 0)
                    choice["logprobs"] = {"content": [
                        {"token": token, "logprob": logprob, "bytes": list(token.encode()),
                         "top_logprobs": [{"token": token, "logprob": logprob}][:top]}
                        for token, logprob in server.logprobs(content)
                    ]}
                return json.dumps(
                    {
                        "id": "fake",
                        "object": "chat.completion",
                        "choices": [choice],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                ).encode()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                with server._lock:
                    server.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                    return
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._reply(server._next_fault(), body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _reply(self, fault: Optional[Fault], body: dict[str, Any]) -> None:
                if fault is None or fault.kind == "slow":
                    time.sleep(fault.seconds if fault else server.delay)
                    self._send(200, self._answer(server.responder(body), body))
                elif fault.kind == "status":
                    self._send(fault.status, b'{"error": {"message": "injected"}}', fault.headers)
                elif fault.kind == "content":
                    self._send(200, self._answer(fault.content))
                elif fault.kind == "bad_body":
                    self._send(200, b"<html>gateway says hello</html>")
                elif fault.kind == "truncated":
                    payload = self._answer(server.responder(body))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                else:
                    raise ValueError(f"unknown fault kind {fault.kind!r}")

        return Handler


# --- a deterministic stand-in for an LLM that reads distil's prompts ------------------------

_PIECE = re.compile(r"\w+|\s+|[^\w\s]")


def fake_logprobs(content: str) -> list[tuple[str, float]]:
    """Tokens of ``content`` (words, spaces, single symbols) with made-up log-probabilities.

    Longer words are "less certain" (-0.05 per character) and symbols nearly
    certain, so items of an answer get different scores strictly between 0 and 1.
    """
    return [(piece, -0.05 * len(piece) if piece[0].isalnum() else -0.001) for piece in _PIECE.findall(content)]

_ENTITY = re.compile(r"\[(\d+)\] \"((?:[^\"\\]|\\.)*)\" \(([^)]*)\)")
_REL_LABEL = re.compile(r"^- (\S+) \(([^ ]+) -> ([^ )]+)\)", re.M)
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")


def _last(prompt: str, field: str) -> str:
    lines = [line for line in prompt.splitlines() if line.startswith(field)]
    return lines[-1][len(field) :] if lines else ""


def distil_responder(body: dict[str, Any]) -> str:
    """Answer a distil task prompt plausibly and deterministically, from the prompt and its schema.

    NER: capitalised word runs, labelled with the first label. TextCat: the
    label sharing most words with the text. REL: the first entity pair whose
    types a relation label allows (read from the prompt's label list).
    """
    prompt = body["messages"][1]["content"]
    fmt = body.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema") or {}
    props = schema.get("properties", {})
    text = _last(prompt, "Text: ")
    if "relations" in props:
        ents = [(int(i), label) for i, _, label in _ENTITY.findall(_last(prompt, "Entities: "))]
        allowed = [(name, heads.split("/"), tails.split("/")) for name, heads, tails in _REL_LABEL.findall(prompt)]
        for i, head_label in ents:
            for j, tail_label in ents:
                for name, heads, tails in allowed:
                    if i != j and head_label in heads and tail_label in tails:
                        return json.dumps({"relations": [{"head": i, "tail": j, "label": name}]})
        return json.dumps({"relations": []})
    if "label" in props:
        labels = props["label"]["enum"]
        words = set(re.findall(r"[a-z]+", text.lower()))
        return json.dumps({"label": max(labels, key=lambda lab: len(words & set(lab.split("_"))))})
    if "labels" in props:
        return json.dumps({"labels": props["labels"]["items"]["enum"][:1]})
    mentions = _CAPITALISED.findall(text)
    return json.dumps({next(iter(props)): mentions[:3]} if mentions and props else {})


def _serve(responder: Callable[[dict[str, Any]], str], delay: float, urls: Any, stop: Any) -> None:
    with FakeOpenAIServer(responder, delay=delay) as server:
        urls.put(server.base_url)
        stop.wait()


@contextmanager
def server_process(responder: Callable[[dict[str, Any]], str], delay: float) -> Iterator[str]:
    """A :class:`FakeOpenAIServer` in its own process (benchmarks: it must not share the client's GIL); yields its URL.

    ``responder`` must be a module-level function (the process is spawned).
    """
    ctx = multiprocessing.get_context("spawn")
    urls, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(responder, delay, urls, stop), daemon=True)
    proc.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        proc.join(timeout=10)
