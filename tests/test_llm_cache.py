"""The SQLite answer cache: hits, misses on a changed prompt or model, restarts, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from distil.components.llm.cache import ResponseCache, cache_key
from distil.pipeline.usage import collect_usage

from .fakeserver import FakeOpenAIServer, distil_responder
from .llm_support import llm_config, load_config_text, openai_block

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


def cached_config(server: FakeOpenAIServer, cache: Path, model: str = "test-model", task_extra: str = "") -> str:
    block = openai_block(server.base_url, f'model = "{model}"\n')
    block += f'\n[components.ner.model.cache]\n@llm_misc = "distil.ResponseCache.v1"\npath = "{cache.as_posix()}"\n'
    return llm_config("ner", block, task_extra=task_extra)


def test_hit_and_miss(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    nlp = load_config_text(cached_config(server, cache), tmp_path / "a.cfg")
    first = nlp("Alice Smith went to Paris.")
    second = nlp("Alice Smith went to Paris.")
    assert len(server.requests) == 1
    assert [e.text for e in first.ents] == [e.text for e in second.ents]
    usage = collect_usage(nlp)["ner"]
    assert usage["cache_hits"] == 1 and usage["requests"] == 1
    nlp("Bob Jones went to Rome.")  # another text is another prompt
    assert len(server.requests) == 2


def test_changed_prompt_or_model_misses(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    load_config_text(cached_config(server, cache), tmp_path / "a.cfg")("Alice Smith went to Paris.")
    assert len(server.requests) == 1
    changed_model = load_config_text(cached_config(server, cache, model="other-model"), tmp_path / "b.cfg")
    changed_model("Alice Smith went to Paris.")
    assert len(server.requests) == 2
    changed_prompt = load_config_text(
        cached_config(server, cache, task_extra='instructions = "List the names."\n'), tmp_path / "c.cfg"
    )
    changed_prompt("Alice Smith went to Paris.")
    assert len(server.requests) == 3
    assert server.requests[2].body["messages"][1]["content"].startswith("List the names.")
    same = load_config_text(cached_config(server, cache), tmp_path / "d.cfg")
    same("Alice Smith went to Paris.")
    assert len(server.requests) == 3


def test_evaluate_and_compare_can_bypass_the_cache(server: FakeOpenAIServer, tmp_path: Path) -> None:
    import spacy

    from distil.pipeline.compare import compare_one
    from distil.pipeline.evaluate import evaluate

    cache = tmp_path / "cache.sqlite"
    nlp = load_config_text(cached_config(server, cache), tmp_path / "a.cfg")
    gold = spacy.blank("en")("Alice Smith went to Paris.")
    evaluate(nlp, [gold])
    assert len(server.requests) == 1
    cached = evaluate(nlp, [gold])  # the default: the cache answers, and the report says so
    assert len(server.requests) == 1
    assert any("1 answer(s) came from the LLM response cache" in note for note in cached.notes)
    fresh = evaluate(nlp, [gold], response_cache=False)
    assert len(server.requests) == 2
    assert not any("response cache" in note for note in fresh.notes)
    compare_one("teacher", nlp, [gold], latency_docs=0)  # compare's default: no cache
    assert len(server.requests) == 3
    nlp("Alice Smith went to Paris.")  # the cache is back on afterwards
    assert len(server.requests) == 3


def test_failed_answers_are_not_cached(server: FakeOpenAIServer, tmp_path: Path) -> None:
    from .fakeserver import Fault

    cache = tmp_path / "cache.sqlite"
    nlp = load_config_text(cached_config(server, cache).replace("timeout = 5", "timeout = 5\nmax_reasks = 0"), tmp_path / "a.cfg")
    server.script(Fault("content", content="nonsense"))
    assert nlp("Alice Smith went to Paris.")._.failures
    assert not nlp("Alice Smith went to Paris.")._.failures
    assert len(server.requests) == 2


_RUN = """
import json, sys
import distil
from distil.pipeline.usage import collect_usage
nlp = distil.load(sys.argv[1])
doc = nlp("Alice Smith went to Paris.")
print(json.dumps({"ents": [e.text for e in doc.ents], "hits": collect_usage(nlp)["ner"]["cache_hits"]}))
"""


@pytest.mark.slow
def test_cache_survives_a_new_process(server: FakeOpenAIServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    config = tmp_path / "a.cfg"
    config.write_text(cached_config(server, cache))
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", _RUN, str(config)], capture_output=True, text=True,
                                  check=True, cwd=REPO).stdout.strip().splitlines()[-1])
        for _ in range(2)
    ]
    assert runs[0]["hits"] == 0 and runs[1]["hits"] == 1
    assert runs[0]["ents"] == runs[1]["ents"] == ["Alice Smith", "Paris"]
    assert len(server.requests) == 1


def _write_many(path: str, prefix: str, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        cache.put(f"{prefix}-{i}", "m", f"answer {prefix} {i}")


@pytest.mark.slow
def test_concurrent_writers_threads_and_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite")
    threads = [threading.Thread(target=_write_many, args=(path, f"t{t}", 50)) for t in range(4)]
    procs = [multiprocessing.get_context("spawn").Process(target=_write_many, args=(path, f"p{p}", 50)) for p in range(2)]
    workers: list[threading.Thread | BaseProcess] = [*threads, *procs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    cache = ResponseCache(path)
    assert len(cache) == 300
    assert cache.get("p1-49") == "answer p1 49" and cache.get("t3-0") == "answer t3 0"


def test_key_depends_on_model_identity_prompt_and_schema() -> None:
    base = cache_key({"model": "a", "temperature": 0.0}, "prompt", {"type": "object"})
    assert base == cache_key({"temperature": 0.0, "model": "a"}, "prompt", {"type": "object"})
    assert base != cache_key({"model": "a", "temperature": 0.5}, "prompt", {"type": "object"})
    assert base != cache_key({"model": "b", "temperature": 0.0}, "prompt", {"type": "object"})
    assert base != cache_key({"model": "a", "temperature": 0.0}, "prompt!", {"type": "object"})
    assert base != cache_key({"model": "a", "temperature": 0.0}, "prompt", {"type": "array"})


def test_unusable_cache_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot create the directory"):
        ResponseCache(tmp_path / "file" / "cache.sqlite")
