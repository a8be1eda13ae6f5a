"""HTTP serving under load: ``distil serve`` vs the FastAPI handler users write by hand, side by side.

Two servers per pipeline run at once on loopback, on the same uvicorn:

- (a) ``distil serve CONFIG`` (dynamic batching, bounded queue, metrics,
  JSON access log), run with ``--max-queue 64`` so that the overload phase
  meets the queue bound rather than the client's connection limit;
- (b) the baseline: a FastAPI ``def`` endpoint that calls ``nlp(text)`` per
  request and returns ``to_record(doc)``, started with ``uvicorn.run(app)``
  (its default access log on, as users get it).

Pipelines: the int8 encoder NER student (``configs/ner_encoder.cfg``; with no
``--model`` a tiny one is trained first: 200 WNUT-17 sentences, one epoch,
``--max-minutes 3``, and only once the 1-minute load average is under 1.5)
and the rules pipeline (``configs/all_rules.cfg``). Request texts are WNUT-17
test sentences, one per request.

1. Closed loop at concurrency 1, 8, 32, 64, a fixed number of requests per
   level (and a time cap), levels interleaved between (a) and (b): docs/s,
   p50/p95/p99 latency, errors.
2. Overload, encoder: open loop at 2x the saturation docs/s of (a) for 30 s
   (bounded: at most 256 requests in flight, fixed duration): statuses, and
   (a)'s RSS before and after.
3. Overload and memory, rules: open loop at 2x (a)'s saturation (or as fast
   as the client can send) until at least 50,000 requests (time cap 240 s):
   statuses and RSS growth. 50k requests of the encoder would take far longer
   on 2 cores, hence the rules pipeline for this phase.

    python bench/serve_load.py [--model DIR] [--data ../shared/data] [--requests 1000] [--rss-requests 50000]

First, for each pipeline, ``nlp.pipe`` against ``nlp(text)`` in this process
without HTTP: the most that batching can buy on this machine.

Ends with ``RESULT`` lines: ``throughput_vs_naive_c32`` (encoder, docs/s of
(a) over (b) at concurrency 32; target >= 3), ``p99_ms_c8`` and
``p99_ms_c8_naive`` (encoder; target: (a) no worse), the same for rules with a
``_rules`` suffix, ``overload_non_503_errors`` (5xx other than 503 and
transport errors in both overload phases; target 0) and ``rss_growth_pct``
(rules phase of >= 50k requests; target <= 10).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from distil.latency import percentile  # noqa: E402

DISTIL = [str(Path(sys.executable).parent / "distil")] if (Path(sys.executable).parent / "distil").exists() else [
    sys.executable, "-m", "distil"
]
LEVELS = (1, 8, 32, 64)
NAIVE_APP = '''
import json, sys
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
import distil

config, overrides, port = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
nlp = distil.load(config, overrides)
app = FastAPI()


class Request(BaseModel):
    text: str


@app.get("/readyz")
def readyz():
    return {"status": "ready"}


@app.post("/v1/annotate")
def annotate(request: Request):
    doc = nlp(request.text)
    return {"records": [distil.to_record(doc).model_dump(mode="json")]}


uvicorn.run(app, host="127.0.0.1", port=port)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (MB)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed after 60 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_servers(config: Path, overrides: dict[str, Any], work: Path, tag: str) -> tuple[Server, Server]:
    """Start (a) distil serve and (b) the naive app on free loopback ports; wait until both answer."""
    naive_script = work / "naive_app.py"
    naive_script.write_text(NAIVE_APP, encoding="utf-8")
    port_a, port_b = free_port(), free_port()
    flags = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    out_a = (work / f"{tag}_distil.log").open("wb")
    out_b = (work / f"{tag}_naive.log").open("wb")
    a = subprocess.Popen([*DISTIL, "serve", str(config), "--port", str(port_a), "--max-queue", "64", *flags],
                         cwd=REPO, stdout=out_a, stderr=subprocess.STDOUT)
    b = subprocess.Popen([sys.executable, str(naive_script), str(config), json.dumps(overrides), str(port_b)],
                         cwd=REPO, stdout=out_b, stderr=subprocess.STDOUT)
    servers = (Server("distil", a, f"http://127.0.0.1:{port_a}"), Server("naive", b, f"http://127.0.0.1:{port_b}"))
    deadline = time.monotonic() + 300
    for server in servers:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} server exited; see {work}/{tag}_{server.name}.log")
            try:
                if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} server not ready after 300 s")
            time.sleep(0.2)
    return servers


@dataclass
class Level:
    docs_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    requests: int


async def closed_loop(url: str, texts: list[str], concurrency: int, requests: int, cap_s: float) -> Level:
    """``concurrency`` clients, each sending its next request when the last is answered, until ``requests``."""
    latencies: list[float] = []
    errors = 0
    sent = 0
    stop_at = time.perf_counter() + cap_s

    # One client (one connection) per virtual user, made before the clock starts: httpx's shared pool costs
    # O(connections) per request, which at concurrency 32 made the client, not the server, the bottleneck.
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2.0)
    clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(concurrency)]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while sent < requests and time.perf_counter() < stop_at:
            text = texts[sent % len(texts)]
            sent += 1
            began = time.perf_counter()
            try:
                response = await client.post(url + "/v1/annotate", json={"text": text})
                ok = response.status_code == 200
            except httpx.TransportError:
                ok = False
            latencies.append(time.perf_counter() - began)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    ms = [x * 1000 for x in latencies]
    return Level(len(latencies) / elapsed, percentile(ms, 50), percentile(ms, 95), percentile(ms, 99), errors,
                 len(latencies))


@dataclass
class Overload:
    offered_per_s: float
    sent: int
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    rss_peak_mb: float = 0.0

    @property
    def non_503_errors(self) -> int:
        """Answers that are neither 200 nor 503 (other 5xx, 4xx) and transport errors."""
        return sum(count for status, count in self.statuses.items() if status not in ("200", "503"))


async def open_loop(url: str, texts: list[str], rate: float, seconds: float, min_requests: int, cap_s: float,
                    pid: int, max_in_flight: int = 256) -> Overload:
    """Send at ``rate`` requests/s (whatever the answers) for ``seconds`` and until ``min_requests``, bounded."""
    result = Overload(offered_per_s=rate, sent=0, seconds=0.0, rss_before_mb=rss_mb(pid))
    result.rss_peak_mb = result.rss_before_mb
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    # Small pools (8 connections each), used in turn: one pool of hundreds of connections is slow in httpx.
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them: reusing a
    # connection the server is closing at that moment is a client-side ReadError, not a server error.
    limits = httpx.Limits(max_connections=8, keepalive_expiry=2.0)
    clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(max(1, max_in_flight // 8))]
    try:

        async def one(text: str, client: httpx.AsyncClient) -> None:
            try:
                response = await client.post(url + "/v1/annotate", json={"text": text})
                result.statuses[str(response.status_code)] += 1
            except httpx.TransportError as err:
                result.statuses[type(err).__name__] += 1
            finally:
                slots.release()

        started = time.perf_counter()
        last_rss = started
        while True:
            now = time.perf_counter()
            elapsed = now - started
            if (elapsed >= seconds and result.sent >= min_requests) or elapsed >= cap_s:
                break
            due = int(elapsed * rate) - result.sent
            for _ in range(max(0, due)):
                await slots.acquire()  # bounded: a full window waits (the offered rate then drops; reported)
                task = asyncio.create_task(one(texts[result.sent % len(texts)], clients[result.sent % len(clients)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                result.sent += 1
            if now - last_rss > 1.0:
                result.rss_peak_mb = max(result.rss_peak_mb, rss_mb(pid))
                last_rss = now
            await asyncio.sleep(0.002)
        result.seconds = time.perf_counter() - started
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()
    result.rss_after_mb = rss_mb(pid)
    result.rss_peak_mb = max(result.rss_peak_mb, result.rss_after_mb)
    return result


def wnut_texts(data: Path) -> list[str]:
    """WNUT-17 test sentences (tokens joined by spaces), one request each."""
    texts, tokens = [], []
    for line in (data / "wnut17" / "emerging.test.annotated").read_text(encoding="utf-8").splitlines():
        if line.strip():
            tokens.append(line.split("\t")[0])
        elif tokens:
            texts.append(" ".join(tokens))
            tokens = []
    if tokens:
        texts.append(" ".join(tokens))
    return texts


def train_tiny_student(data: Path, work: Path) -> Path:
    """A tiny int8 NER student (200 sentences, 1 epoch): serving speed needs the architecture, not accuracy."""
    while os.getloadavg()[0] >= 1.5:  # torch training beside other jobs' LLM runs thrashes 2 cores: wait
        print(f"waiting for load < 1.5 before training (now {os.getloadavg()[0]:.2f})", flush=True)
        time.sleep(30)
    import spacy

    from distil.corpus import read_docs, write_docs

    full_train, full_dev = work / "train.spacy", work / "dev.spacy"
    for source, target in ((data / "wnut17" / "wnut17train.conll", full_train),
                           (data / "wnut17" / "emerging.dev.conll", full_dev)):
        subprocess.run([*DISTIL, "convert", str(source), str(target), "--format", "conll"], check=True,
                       stdout=subprocess.DEVNULL)
    nlp = spacy.blank("en")
    small_train, small_dev = work / "small_train.spacy", work / "small_dev.spacy"
    write_docs(list(read_docs(full_train, nlp))[:200], small_train)
    write_docs(list(read_docs(full_dev, nlp))[:50], small_dev)
    model = work / "ner_model"
    subprocess.run([*DISTIL, "train", "ner", str(small_train), str(small_dev), "--output", str(model), "--epochs", "1",
                    "--max-length", "128", "--lr", "1e-4", "--threads", "2", "--max-minutes", "3",
                    "--schema", str(REPO / "configs" / "ner_encoder.cfg")], check=True, stdout=subprocess.DEVNULL)
    return model


def pipeline_ceiling(config: Path, overrides: dict[str, Any], texts: list[str], batch_size: int) -> float:
    """docs/s of ``nlp.pipe`` over ``nlp(text)`` one by one, in this process, no HTTP: what batching can buy."""
    import distil

    nlp = distil.load(config, overrides)
    list(nlp.pipe(texts[:50]))

    def docs_per_s(run: Any) -> float:
        # Passes over the texts until at least 2 s: one pass of a fast pipeline is tens of ms, all noise.
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < 2.0:
            run()
            done += len(texts)
        return done / (time.perf_counter() - started)

    one_by_one = docs_per_s(lambda: [nlp(text) for text in texts])
    batched = docs_per_s(lambda: list(nlp.pipe(texts, batch_size=batch_size)))
    print(f"pipeline alone, no HTTP: nlp(text) {one_by_one:.0f} docs/s, nlp.pipe(batch_size={batch_size}) "
          f"{batched:.0f} docs/s: batching can buy {batched / one_by_one:.2f}x", flush=True)
    return batched / one_by_one


def run_levels(pipeline: str, servers: tuple[Server, Server], texts: list[str], requests: int,
               cap_s: float) -> dict[tuple[str, int], Level]:
    """The closed-loop levels, (a) then (b) at each level, after a short warm-up of both."""
    out: dict[tuple[str, int], Level] = {}
    for server in servers:
        asyncio.run(closed_loop(server.url, texts, 4, 40, 60))
    for concurrency in LEVELS:
        n = max(100, requests // 4) if concurrency == 1 else requests
        for server in servers:
            level = asyncio.run(closed_loop(server.url, texts, concurrency, n, cap_s))
            out[(server.name, concurrency)] = level
            print(f"{pipeline:<8} {server.name:<7} c={concurrency:<3} {level.requests:>6} req "
                  f"{level.docs_per_s:>8.1f} docs/s  p50 {level.p50_ms:>7.1f} ms  p95 {level.p95_ms:>7.1f} ms  "
                  f"p99 {level.p99_ms:>7.1f} ms  errors {level.errors}", flush=True)
    return out


def report_overload(name: str, result: Overload) -> None:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.statuses.items()))
    growth = 100 * (result.rss_after_mb - result.rss_before_mb) / result.rss_before_mb
    print(f"{name}: offered {result.offered_per_s:.0f} req/s, sent {result.sent} in {result.seconds:.1f} s "
          f"({result.sent / result.seconds:.0f} req/s achieved); statuses {{{statuses}}}; RSS "
          f"{result.rss_before_mb:.0f} -> {result.rss_after_mb:.0f} MB (peak {result.rss_peak_mb:.0f}, "
          f"{growth:+.1f}%)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="int8 NER student directory (distil train); default: train one.")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--requests", type=int, default=1000, help="Requests per closed-loop level (c=1: a quarter).")
    parser.add_argument("--level-cap-s", type=float, default=90.0, help="Time cap per closed-loop level.")
    parser.add_argument("--overload-s", type=float, default=30.0)
    parser.add_argument("--rss-requests", type=int, default=50_000)
    parser.add_argument("--pipelines", default="encoder,rules", help="Comma-separated: encoder, rules.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="distil-bench-serve-"))
    texts = wnut_texts(args.data)
    print(f"{len(texts)} WNUT-17 test sentences; logs in {work}; load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, float] = {}
    non_503 = 0

    pipelines: list[tuple[str, Path, dict[str, Any]]] = []
    chosen = set(args.pipelines.split(","))
    if "encoder" in chosen:
        model = args.model or train_tiny_student(args.data, work)
        pipelines.append(("encoder", REPO / "configs" / "ner_encoder.cfg",
                          {"paths.model": str(model), "components.ner.precision": "int8", "components.ner.threads": 2,
                           # 8 inputs per onnxruntime call: on this CPU int8 MiniLM runs tweets faster in 8s than
                           # in 32s (padding); the naive server's nlp(text) is unaffected.
                           "components.ner.batch_size": 8}))
    if "rules" in chosen:
        pipelines.append(("rules", REPO / "configs" / "all_rules.cfg", {}))

    for pipeline, config, overrides in pipelines:
        suffix = "" if pipeline == "encoder" else "_rules"
        results[f"pipe_vs_one_by_one{suffix}"] = pipeline_ceiling(config, overrides, texts[:400], 32)
        servers = start_servers(config, overrides, work, pipeline)
        distil_server, naive_server = servers
        try:
            print(f"{pipeline}: RSS after start: distil serve {rss_mb(distil_server.process.pid):.0f} MB, "
                  f"naive {rss_mb(naive_server.process.pid):.0f} MB", flush=True)
            levels = run_levels(pipeline, servers, texts, args.requests, args.level_cap_s)
            results[f"throughput_vs_naive_c32{suffix}"] = (
                levels[("distil", 32)].docs_per_s / levels[("naive", 32)].docs_per_s
            )
            results[f"p99_ms_c8{suffix}"] = levels[("distil", 8)].p99_ms
            results[f"p99_ms_c8_naive{suffix}"] = levels[("naive", 8)].p99_ms
            saturation = max(levels[("distil", c)].docs_per_s for c in LEVELS)
            naive_server.stop()  # the overload phases load (a) alone
            if pipeline == "encoder":
                overload = asyncio.run(open_loop(distil_server.url, texts, 2 * saturation, args.overload_s, 0,
                                                 args.overload_s + 30, distil_server.process.pid))
                report_overload("encoder overload (2x saturation, 30 s)", overload)
                results["rss_growth_pct_encoder_overload"] = (
                    100 * (overload.rss_after_mb - overload.rss_before_mb) / overload.rss_before_mb
                )
            else:
                overload = asyncio.run(open_loop(distil_server.url, texts, 2 * saturation, args.overload_s,
                                                 args.rss_requests, 240, distil_server.process.pid))
                report_overload(f"rules overload (2x saturation, >= {args.rss_requests} requests)", overload)
                results["rss_growth_pct"] = (
                    100 * (overload.rss_after_mb - overload.rss_before_mb) / overload.rss_before_mb
                )
                results["rss_phase_requests"] = overload.sent
            non_503 += overload.non_503_errors
            status = distil_server.stop()
            print(f"{pipeline}: distil serve exited with status {status} after SIGTERM", flush=True)
        finally:
            for server in servers:
                server.stop()
    results["overload_non_503_errors"] = non_503
    for name, value in results.items():
        print(f"RESULT {name}={value:.2f}" if isinstance(value, float) else f"RESULT {name}={value}")


if __name__ == "__main__":
    main()
