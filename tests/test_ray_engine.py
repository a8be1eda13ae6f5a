"""``--engine ray`` on a real Ray cluster started by the test: every input in the store exactly once.

The cluster is a head and a second node (two raylets) on 127.0.0.1, started
with ``ray start``; the pipeline is an LLM NER component asking the
fault-injecting OpenAI-compatible server of the tests (in this process, on
loopback), slowed so that a run lasts long enough to kill parts of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from distil.pipeline.annotate import read_records

from .conftest import distil_cli
from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, openai_block

pytest.importorskip("ray")

RAY = str(Path(sys.executable).parent / "ray")
# Clusters of Ray >= 2.52 authenticate with a token (generated in ~/.ray on first use); every process joins in token mode.
ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
N_TEXTS = 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head node and a second node on 127.0.0.1; yields the address, stops both afterwards."""
    port = _free_port()
    # Short: Ray's Unix socket paths live under it and are limited to about 107 bytes.
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    common = ["--node-ip-address", "127.0.0.1", "--object-store-memory", str(80 * 1024 * 1024), "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
                    "--temp-dir", temp, *common], env=ENV, check=True, capture_output=True, timeout=180)
    try:
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "2", *common],
                       env=ENV, check=True, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder, delay=0.25) as fake:
        yield fake


def _job(tmp_path: Path, server: FakeOpenAIServer, address: str) -> tuple[list[str], Path, list[str]]:
    config = tmp_path / "ner.cfg"
    config.write_text(llm_config("ner", openai_block(server.base_url, "concurrency = 2")), encoding="utf-8")
    texts = [f"Report {i} says Alice Smith met Bob Jones in Paris." for i in range(N_TEXTS)]
    data = tmp_path / "in.txt"
    data.write_text("\n".join([*texts, texts[5], texts[77]]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [*distil_cli(), "annotate", str(config), str(data), "--output", str(out), "--batch-size", "4",
           "--engine", "ray", "--replicas", "2", "--cpus-per-replica", "0.5", "--ray-address", address]
    return cmd, out, texts


def _wait_for_records(out: Path, n: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 240
    records = out / "records.jsonl"
    while time.time() < deadline:
        if records.exists() and records.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    raise AssertionError("no progress within 240 s")


def _replica_pids() -> list[int]:
    """Worker processes of distil's replicas: Ray titles them ``ray::AnnotationReplica...``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::AnnotationReplica"):
                pids.append(int(entry.name))
    return pids


def _exactly_once(out: Path, texts: list[str]) -> None:
    records = read_records(out)
    counts = Counter(r.text for r in records)
    assert set(counts) == set(texts) and set(counts.values()) == {1}, "every distinct input exactly once"
    assert (out / "records.jsonl").read_text(encoding="utf-8").count("\n") == len(texts)
    assert not [r for r in records if r.meta.get("failures")], "no document was lost to a failure"
    assert all([e.text for e in r.entities][:2] == ["Report", "Alice Smith"] for r in records)


def test_a_replica_killed_mid_run_has_its_blocks_redone(tmp_path: Path, cluster: str, server: FakeOpenAIServer) -> None:
    cmd, out, texts = _job(tmp_path, server, cluster)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    _wait_for_records(out, 16, proc)
    victims = _replica_pids()
    assert len(victims) == 2, f"two replicas running, found {victims}"
    os.kill(victims[0], signal.SIGKILL)
    # A second writer on the same store is refused before it starts anything.
    second = subprocess.run(cmd, capture_output=True, timeout=120, env=ENV)
    assert second.returncode == 1 and b"being written by another run" in second.stderr
    assert proc.poll() is None, "the run was still going while the second writer was refused"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert b"sent again after a replica was lost" in err
    report = json.loads((out / "report.json").read_text())
    assert report["state"] == "finished" and report["engine"] == "ray" and report["retried_blocks"] >= 1
    assert report["duplicates"] == 2
    _exactly_once(out, texts)

    # The same store with another model is another job: refused, naming what changed.
    other = subprocess.run([*cmd, "--components.ner.model.model", "other-model"], capture_output=True, timeout=120,
                           env=ENV)
    assert other.returncode == 1
    assert b"components.ner changed" in other.stderr and b"--new-job" in other.stderr


def test_a_driver_killed_mid_run_resumes_from_the_store(tmp_path: Path, cluster: str, server: FakeOpenAIServer) -> None:
    cmd, out, texts = _job(tmp_path, server, cluster)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    _wait_for_records(out, 16, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = (out / "records.jsonl").read_bytes().count(b"\n")
    assert done < N_TEXTS, "killed mid-run"
    rerun = subprocess.run(cmd, capture_output=True, timeout=300, env=ENV)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert f"{done} already done".encode() in rerun.stderr
    _exactly_once(out, texts)


def test_distil_run_on_ray_writes_what_the_local_engine_writes_in_input_order(
    tmp_path: Path, cluster: str, repo: Path
) -> None:
    texts = [f"Sundar Pichai is the CEO of Google, based in Mountain View, story {i}." for i in range(9)]
    data = tmp_path / "in.txt"
    data.write_text("\n".join([*texts[:4], "", *texts[4:]]) + "\n", encoding="utf-8")
    base = [*distil_cli(), "run", "configs/all_rules.cfg", "--input", str(data), "--batch-size", "2"]
    local = subprocess.run(base, capture_output=True, timeout=120, cwd=repo, env=ENV)
    ray_run = subprocess.run([*base, "--engine", "ray", "--replicas", "2", "--cpus-per-replica", "0.5",
                              "--ray-address", cluster], capture_output=True, timeout=300, cwd=repo, env=ENV)
    assert local.returncode == 0 and ray_run.returncode == 0, ray_run.stderr.decode()
    assert ray_run.stdout == local.stdout and ray_run.stdout.count(b"\n") == 9
    assert [json.loads(line)["text"] for line in ray_run.stdout.splitlines()] == texts
    assert b"9 document(s) written, 1 skipped" in ray_run.stderr
