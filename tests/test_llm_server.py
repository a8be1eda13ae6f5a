"""``python -m llama_cpp.server`` with the packaged model on 127.0.0.1, driven through distil.OpenAI.v1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from distil.components.llm.models.gguf import default_model_path
from distil.pipeline.usage import collect_usage

from .backends import SCHEMA_LABELS
from .llm_support import llm_config, load_config_text, openai_block

pytest.importorskip("llama_cpp.server")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--n_threads", "1", "--model_alias", "gemma-3-270m"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_ner_and_textcat_through_a_real_llama_cpp_server(llama_server: str, tmp_path: Path) -> None:
    block = openai_block(llama_server, 'model = "gemma-3-270m"\nresponse_format = "json_object"\ntimeout = 300\nconcurrency = 2\n')
    ner = load_config_text(llm_config("ner", block), tmp_path / "ner.cfg")
    texts = ["Tim Cook visited Berlin.", "Sundar Pichai works for Google."]
    docs = list(ner.pipe(texts))
    assert [d.text for d in docs] == texts
    for doc in docs:
        assert all(e.label_ in SCHEMA_LABELS["ner"] and doc.text[e.start_char : e.end_char] == e.text for e in doc.ents)
        assert all(f.kind in {"invalid_json", "schema_violation"} for f in doc._.failures)
    usage = collect_usage(ner)["ner"]
    assert usage["requests"] >= 2 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0

    textcat = load_config_text(llm_config("textcat", block), tmp_path / "textcat.cfg")
    doc = textcat("I lost my card yesterday.")
    assert set(doc.cats) == set(SCHEMA_LABELS["textcat"])
    assert doc._.failures or sorted(doc.cats.values()) == [0.0, 0.0, 1.0]
