"""``distil serve`` against real uvicorn servers on loopback, started as ``distil serve`` subprocesses.

Three servers start together (about 5 s on 2 cores): the rules pipeline with
a bearer token and small limits; a slow pipeline (a component from a
``--code`` file that sleeps per batch and raises on "boom") with a tiny queue
and a short deadline, for overload, deadlines and batch isolation; and a
second slow one that the SIGTERM test stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REPO, distil_cli

pytestmark = pytest.mark.slow

TOKEN = "s3cret-test-token-4c1f"
TOKEN_ENV = "DISTIL_TEST_SERVE_TOKEN"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW_CODE = '''
import time
from spacy.language import Language


class Slow:
    """Sleeps once per batch (so batching shows in the timing); raises on a text with "boom"."""

    def __init__(self, seconds):
        self.seconds = seconds

    def _check(self, doc):
        if "boom" in doc.text:
            raise ValueError("boom in the text")
        if doc.text.startswith("sleep:"):
            time.sleep(float(doc.text.split(":")[1]))

    def __call__(self, doc):
        self._check(doc)
        time.sleep(self.seconds)
        return doc

    def pipe(self, docs, batch_size=128):
        docs = list(docs)
        for doc in docs:
            self._check(doc)
        time.sleep(self.seconds)
        yield from docs


@Language.factory("test_slow", default_config={"seconds": 0.2})
def make_slow(nlp, name, seconds):
    return Slow(seconds)
'''
SLOW_CONFIG = """
[nlp]
lang = "en"
pipeline = ["slow"]

[components]

[components.slow]
factory = "test_slow"
seconds = 0.2
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(args: list[str], log: Path, env: dict[str, str]) -> Server:
    port = free_port()
    handle = log.open("wb")
    process = subprocess.Popen(
        [*distil_cli(), "serve", *args, "--port", str(port)], cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
        env=env,
    )
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited with {server.process.returncode}:\n{server.logs()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready after {timeout} s:\n{server.logs()}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    work = tmp_path_factory.mktemp("serve")
    (work / "slow.py").write_text(SLOW_CODE, encoding="utf-8")
    (work / "slow.cfg").write_text(SLOW_CONFIG, encoding="utf-8")
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONUNBUFFERED": "1"}
    slow = ["--code", str(work / "slow.py"), str(work / "slow.cfg"), "--max-batch-size", "2", "--max-queue", "4",
            "--timeout", "1.5"]
    started = {
        "rules": start(["configs/all_rules.cfg", "--token-env", TOKEN_ENV, "--max-text-chars", "200",
                        "--max-body-bytes", "20000", "--max-texts", "8"], work / "rules.log", env),
        "slow": start(slow, work / "slow.log", env),
        "drain": start(slow, work / "drain.log", env),
    }
    try:
        for server in started.values():
            wait_ready(server)
        yield started
    finally:
        for server in started.values():
            stop(server)


def post(server: Server, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(server.url + "/v1/annotate", json=body, headers={**AUTH, **(headers or {})}, timeout=10)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.url + "/metrics", headers=AUTH, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_answers_equal_distil_run_records(servers: dict[str, Server]) -> None:
    texts = ["Apple hired Tim Cook in Cupertino.", "I lost my card yesterday, please block it.",
             "Sundar Pichai is the CEO of Google, which is based in Mountain View.", "Zoë flew to Köln ✈"]
    run = subprocess.run([*distil_cli(), "run", "configs/all_rules.cfg", *texts], cwd=REPO, capture_output=True,
                         text=True, check=True)
    expected = [json.loads(line) for line in run.stdout.splitlines()]
    many = post(servers["rules"], {"texts": texts})
    assert many.status_code == 200, many.text
    assert many.json() == {"records": expected, "errors": []}
    one = post(servers["rules"], {"text": texts[0]})
    assert one.json()["records"] == expected[:1]
    assert one.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "x" * 201}, 413, "text has 201 characters, over the limit of 200"),
        ({"texts": ["fine", "y" * 300]}, 413, "texts[1] has 300 characters, over the limit of 200"),
        ({"texts": ["a"] * 9}, 413, "9 texts in one request exceed the limit of 8"),
        ({"text": "   "}, 422, "empty text"),
        ({"texts": ["", " "]}, 422, "every text is empty"),
        ({"text": 5}, 422, "['body', 'text']"),
        ({"texts": "not a list"}, 422, "['body', 'texts']"),
        ({"text": "a", "texts": ["b"]}, 422, 'exactly one of "text" or "texts"'),
        ({}, 422, 'exactly one of "text" or "texts"'),
        ({"text": "a", "lang": "de"}, 422, "['body', 'lang']"),
        ({"texts": []}, 422, "['body', 'texts']"),
    ],
)
def test_bad_input_gets_its_status_and_message(
    servers: dict[str, Server], body: Any, status: int, message: str
) -> None:
    response = post(servers["rules"], body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    shown = detail if isinstance(detail, str) else " ".join(f"{e['loc']} {e['msg']}" for e in detail)
    assert message in shown


def test_an_empty_text_among_others_is_skipped_as_distil_run_skips_it(servers: dict[str, Server]) -> None:
    # distil run skips an empty text with the reason "empty text" and annotates the rest; so does the service.
    server = servers["rules"]
    alone = post(server, {"text": "Apple hired Tim Cook."}).json()["records"][0]
    response = post(server, {"texts": ["", "Apple hired Tim Cook.", "  "]})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "records": [None, alone, None],
        "errors": [{"index": 0, "detail": "empty text"}, {"index": 2, "detail": "empty text"}],
    }
    metrics = httpx.get(server.url + "/metrics", headers=AUTH).text
    assert 'distil_serve_documents_total{outcome="skipped"}' in metrics


def test_malformed_json_oversized_body_and_wrong_content_type(servers: dict[str, Server]) -> None:
    url = servers["rules"].url + "/v1/annotate"
    malformed = httpx.post(url, content=b'{"text": "unclosed', headers={**AUTH, "Content-Type": "application/json"})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    big = httpx.post(url, json={"text": "z" * 30_000}, headers=AUTH)
    assert big.status_code == 413
    assert "exceeds the limit of 20,000 bytes" in big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"text": "'
        for _ in range(40):
            yield b"w" * 1000
        yield b'"}'

    chunked = httpx.post(url, content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert chunked.status_code == 413
    form = httpx.post(url, content=b"text=hello", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert "Content-Type: application/json" in form.json()["detail"]
    assert post(servers["rules"], {"text": "Apple hired Tim Cook."}).status_code == 200  # still serving


def test_auth_refuses_a_wrong_token_and_never_logs_it(servers: dict[str, Server]) -> None:
    server = servers["rules"]
    url = server.url + "/v1/annotate"
    marker = "Quetzalcoatl-unique-document-text"
    assert httpx.post(url, json={"text": marker}).status_code == 401
    wrong = httpx.post(url, json={"text": marker}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert post(server, {"text": marker}).status_code == 200
    assert httpx.get(server.url + "/healthz").status_code == 200  # probes need no token
    logs = server.logs()
    assert TOKEN not in logs and marker not in logs
    access = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert {"request_id", "method", "path", "status", "duration_ms", "docs"} <= set(access[-1])
    assert {401, 200} <= {entry["status"] for entry in access}


def test_metrics_count_what_was_sent(servers: dict[str, Server]) -> None:
    server = servers["rules"]
    ok_key = ("distil_serve_requests_total", (("path", "/v1/annotate"), ("status", "200")))
    bad_key = ("distil_serve_requests_total", (("path", "/v1/annotate"), ("status", "422")))
    docs_key = ("distil_serve_documents_total", (("outcome", "ok"),))
    batches_key = ("distil_serve_batch_size_sum", ())
    before = scrape(server)
    for _ in range(3):
        assert post(server, {"texts": ["Apple hired Tim Cook.", "I lost my card."]}).status_code == 200
    assert post(server, {"text": ""}).status_code == 422
    after = scrape(server)
    assert after[ok_key] - before.get(ok_key, 0) == 3
    assert after[bad_key] - before.get(bad_key, 0) == 1
    assert after[docs_key] - before.get(docs_key, 0) == 6
    assert after[batches_key] - before.get(batches_key, 0) == 6
    assert after[("distil_serve_queue_depth", ())] == 0
    assert after[("distil_serve_ready", ())] == 1
    assert ("distil_serve_request_duration_seconds_count", (("path", "/v1/annotate"),)) in after


def test_schema_health_and_openapi(servers: dict[str, Server]) -> None:
    server = servers["rules"]
    schema = httpx.get(server.url + "/v1/schema", headers=AUTH).json()
    assert schema["pipeline"] == ["sentencizer", "ner", "rel", "textcat"]
    assert schema["components"]["ner"]["task"] == "ner"
    assert "person" in json.dumps(schema["components"]["ner"]["schema"])
    assert schema["record"]["title"] == "distil DocRecord"
    assert httpx.get(server.url + "/readyz").json() == {"status": "ready"}
    openapi = httpx.get(server.url + "/openapi.json").json()
    assert {"AnnotateRequest", "AnnotateResponse", "DocRecord"} <= set(openapi["components"]["schemas"])


def test_one_bad_document_fails_only_itself(servers: dict[str, Server]) -> None:
    server = servers["slow"]
    mixed = post(server, {"texts": ["fine", "boom here", "also fine"]})
    assert mixed.status_code == 200
    body = mixed.json()
    assert [r and r["text"] for r in body["records"]] == ["fine", None, "also fine"]
    assert body["errors"] == [{"index": 1, "detail": "pipeline error: ValueError: boom in the text"}]
    alone = post(server, {"text": "boom"})
    assert alone.status_code == 500
    assert alone.json()["detail"] == "pipeline error: ValueError: boom in the text"


async def _burst(url: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        return list(await asyncio.gather(*(client.post(url, json={"text": f"doc {i}"}) for i in range(n))))


def test_overload_gets_503_and_the_server_recovers(servers: dict[str, Server]) -> None:
    server = servers["slow"]
    responses = asyncio.run(_burst(server.url + "/v1/annotate", 16))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"].startswith("server busy:")
    metrics = scrape(server)
    assert metrics[("distil_serve_documents_total", (("outcome", "rejected"),))] == statuses.count(503)
    assert post(server, {"text": "after the storm"}).status_code == 200


def test_request_past_its_deadline_gets_504(servers: dict[str, Server]) -> None:
    server = servers["slow"]
    late = post(server, {"text": "sleep:2.2"})  # the component sleeps 2.2 s; the deadline is 1.5 s
    assert late.status_code == 504
    assert late.json()["detail"].startswith("request past its deadline of 1.5 s")
    assert post(server, {"text": "next"}).status_code == 200  # the batch finished; the server goes on


def test_sigterm_drains_in_flight_requests_and_exits_0(servers: dict[str, Server]) -> None:
    server = servers["drain"]
    url = server.url + "/v1/annotate"

    async def scenario() -> tuple[list[httpx.Response], BaseException | None]:
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            in_flight = [asyncio.create_task(client.post(url, json={"text": f"doc {i}"})) for i in range(4)]
            await asyncio.sleep(0.15)  # the first batch runs, the second is queued
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            refused: BaseException | None = None
            try:
                async with httpx.AsyncClient(timeout=2) as fresh:  # a new connection: no longer accepted
                    await fresh.get(server.url + "/healthz")
            except httpx.TransportError as err:
                refused = err
            return list(await asyncio.gather(*in_flight)), refused

    responses, refused = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4
    assert refused is not None
    assert server.process.wait(timeout=15) == 0
    assert "Shutting down" in server.logs()
