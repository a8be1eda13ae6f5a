"""distil.OpenAI.v1 against a fault-injecting OpenAI-compatible server on 127.0.0.1.

Proves retries (429 with Retry-After, 500, timeouts, truncated and unreadable
bodies), re-asks with the validation error, counted failures that keep the doc
and its other annotations, concurrency, and that the API key never leaks.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from spacy.language import Language

from distil.annotations import SYSTEMIC_FAILURE_KINDS, EntityPrediction, write_entities
from distil.components.llm import OpenAIModel
from distil.pipeline.config import ConfigError
from distil.pipeline.usage import collect_usage

from .fakeserver import FakeOpenAIServer, Fault, distil_responder
from .llm_support import llm_config, load_config_text, openai_block


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(distil_responder) as srv:
        yield srv


def build(server: FakeOpenAIServer, tmp_path: Path, task: str = "ner", extra: str = "") -> Language:
    return load_config_text(llm_config(task, openai_block(server.base_url, extra)), tmp_path / "llm.cfg")


def model_of(nlp: Language, name: str = "ner") -> OpenAIModel:
    return cast(Any, nlp.get_pipe(name))._model


def test_batch_goes_out_concurrently_and_in_order(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.delay = 0.2
    nlp = build(server, tmp_path, extra="concurrency = 8\n")
    texts = [f"Doc number {i} mentions Alice Smith." for i in range(8)]
    docs = list(nlp.pipe(texts, batch_size=8))
    assert [d.text for d in docs] == texts
    assert server.max_in_flight > 1, "a batch must not be sent one request at a time"
    assert all(any(e.text == "Alice Smith" for e in d.ents) for d in docs)
    assert model_of(nlp).usage.requests == 8
    assert not server.requests[0].headers.get("Authorization")


def test_concurrency_one_sends_one_at_a_time(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path, extra="concurrency = 1\n")
    list(nlp.pipe(["Alice Smith went home.", "Bob Jones too."]))
    assert server.max_in_flight == 1


def test_429_retry_after_is_honoured(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path)
    server.script(Fault("status", 429, headers={"Retry-After": "0.5"}))
    started = time.perf_counter()
    doc = nlp("Alice Smith lives here.")
    assert time.perf_counter() - started >= 0.5
    assert [e.text for e in doc.ents] == ["Alice Smith"] and not doc._.failures
    assert model_of(nlp).usage.retries == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", [Fault("status", 500), Fault("status", 503), Fault("truncated"), Fault("bad_body")])
def test_transient_failures_are_retried(server: FakeOpenAIServer, tmp_path: Path, fault: Fault) -> None:
    nlp = build(server, tmp_path)
    server.script(fault, fault)
    doc = nlp("Alice Smith lives here.")
    assert [e.text for e in doc.ents] == ["Alice Smith"] and not doc._.failures
    assert model_of(nlp).usage.retries == 2


def test_slow_answer_times_out_and_is_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path, extra="timeout = 0.3\n")
    server.script(Fault("slow", seconds=1.0))
    doc = nlp("Alice Smith lives here.")
    assert [e.text for e in doc.ents] == ["Alice Smith"]
    assert model_of(nlp).usage.retries == 1


def test_persistent_failure_is_recorded_and_no_doc_is_dropped(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path, extra="timeout = 0.3\nmax_retries = 1\nconcurrency = 1\n")
    # The second doc times out twice (all its attempts); the others are fine.
    server.script(Fault("slow", seconds=0.0), Fault("slow", seconds=1.0), Fault("slow", seconds=1.0))
    docs = list(nlp.pipe(["Alice Smith one.", "Bob Jones two.", "Carol White three."]))
    assert [d.text for d in docs] == ["Alice Smith one.", "Bob Jones two.", "Carol White three."]
    assert [len(d._.failures) for d in docs] == [0, 1, 0]
    failure = docs[1]._.failures[0]
    assert (failure.component, failure.task, failure.kind) == ("ner", "ner", "timeout")
    assert "after 2 attempts" in failure.reason
    assert [e.text for e in docs[2].ents] == ["Carol White"]
    usage = collect_usage(nlp)["ner"]
    assert usage["failures"] == {"timeout": 1} and usage["docs"] == 3 and usage["failed_docs"] == 1


def test_client_errors_are_not_retried(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path)
    server.script(Fault("status", 400))
    doc = nlp("Alice Smith lives here.")
    assert doc._.failures[0].kind == "http_error" and "HTTP 400" in doc._.failures[0].reason
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [
        (401, "auth_error", ["HTTP 401", "DISTIL_TEST_KEY", "api_key_env", "wrong or lack access"]),
        (403, "auth_error", ["HTTP 403", "DISTIL_TEST_KEY"]),
        (404, "model_not_found", ["HTTP 404", "'test-model'", "base_url", "may be wrong"]),
        (400, "http_error", ["HTTP 400"]),
    ],
)
def test_configuration_errors_get_their_own_kinds(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], status: int, kind: str, says: list[str],
) -> None:
    secret = "sk-test-SECRET-0987654321"
    monkeypatch.setenv("DISTIL_TEST_KEY", secret)
    nlp = build(server, tmp_path, extra='api_key_env = "DISTIL_TEST_KEY"\n')
    server.script(Fault("status", status=status))
    with caplog.at_level(logging.DEBUG):
        doc = nlp("Alice Smith lives here.")
    (failure,) = doc._.failures
    assert failure.kind == kind and all(text in failure.reason for text in says), failure.reason
    assert server.base_url in failure.reason
    assert (kind in SYSTEMIC_FAILURE_KINDS) == (status != 400)
    assert len(server.requests) == 1, "a client error is not retried"
    assert server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    out = capsys.readouterr()
    logged = [caplog.text, out.out, out.err, json.dumps(collect_usage(nlp)), json.dumps(failure.to_dict())]
    assert all(secret not in text for text in logged)


def test_auth_error_without_a_key_says_to_set_one(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path)
    server.script(Fault("status", status=401))
    (failure,) = nlp("Alice Smith lives here.")._.failures
    assert failure.kind == "auth_error" and "no API key was sent" in failure.reason and "api_key_env" in failure.reason


def test_invalid_json_is_reasked_with_the_error(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path)
    server.script(Fault("content", content='{"person": ["Alice Smith"'))
    doc = nlp("Alice Smith lives here.")
    assert [e.text for e in doc.ents] == ["Alice Smith"] and not doc._.failures
    messages = server.requests[1].body["messages"]
    assert messages[2] == {"role": "assistant", "content": '{"person": ["Alice Smith"'}
    assert "not valid JSON" in messages[3]["content"]
    assert model_of(nlp).usage.reasks == 1


def test_schema_violation_after_reasks_is_a_counted_failure(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path, task="textcat", extra="max_reasks = 1\n")
    bad = json.dumps({"label": "not_a_label"})
    server.script(Fault("content", content=bad), Fault("content", content=bad))
    doc = nlp.make_doc("I lost my card")
    doc.cats = {"kept": 1.0}  # an earlier annotation survives the failure
    doc = nlp(doc)
    assert doc.cats == {"kept": 1.0}
    (failure,) = doc._.failures
    assert failure.kind == "schema_violation" and failure.raw == bad and "label" in failure.reason
    assert "not_a_label" in server.requests[1].body["messages"][2]["content"]
    assert collect_usage(nlp)["textcat"]["failures"] == {"schema_violation": 1}


def test_failed_ner_keeps_existing_entities(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path, extra="max_reasks = 0\n")
    server.script(Fault("content", content="I think the answer is Alice"))
    doc = nlp.make_doc("Alice Smith lives in Paris.")
    write_entities(doc, [EntityPrediction(21, 26, "location", 0.9)])
    doc = nlp(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("Paris", "location")]
    assert doc._.failures[0].kind == "invalid_json"


def test_response_format_carries_the_bounded_schema(server: FakeOpenAIServer, tmp_path: Path) -> None:
    nlp = build(server, tmp_path)
    nlp("Alice Smith lives here.")
    fmt = server.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert set(schema["properties"]) == {"person", "location", "corporation"}
    assert schema["additionalProperties"] is False
    person = schema["properties"]["person"]
    assert person["maxItems"] >= 1 and person["items"]["maxLength"] >= 1


def test_api_key_from_env_never_leaks(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-SECRET-1234567890"
    monkeypatch.setenv("DISTIL_TEST_KEY", secret)
    nlp = build(server, tmp_path, extra='api_key_env = "DISTIL_TEST_KEY"\nmax_retries = 0\n')
    assert not server.requests, "no request (no auth check) at load time"
    nlp("Alice Smith lives here.")
    assert server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    server.script(Fault("status", 401))
    failed = nlp("Bob Jones too.")
    model = model_of(nlp)
    texts = [nlp.config.to_str(), repr(model), json.dumps([f.to_dict() for f in failed._.failures])]
    nlp.to_disk(tmp_path / "saved")
    texts += [p.read_text(errors="replace") for p in (tmp_path / "saved").rglob("*") if p.is_file()]
    assert failed._.failures and all(secret not in text for text in texts)


def test_missing_api_key_names_the_variable(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTIL_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="DISTIL_MISSING_KEY"):
        build(server, tmp_path, extra='api_key_env = "DISTIL_MISSING_KEY"\n')


def test_bad_base_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url must start with http"):
        load_config_text(llm_config("ner", openai_block("localhost:8080/v1")), tmp_path / "bad.cfg")


@pytest.mark.parametrize("proxy_variable", ["HTTP_PROXY", "http_proxy"])
def test_trust_env_decides_whether_the_environment_proxy_is_used(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxy_variable: str
) -> None:
    # A proxy nobody listens on: honoured by default (as httpx does), ignored with trust_env = false.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(proxy_variable, "http://127.0.0.1:9")
    proxied = build(server, tmp_path, extra="max_retries = 0\n")("Alice Smith lives here.")
    assert [f.kind for f in proxied._.failures] == ["connection_error"] and not server.requests
    direct = build(server, tmp_path, extra="max_retries = 0\ntrust_env = false\n")("Alice Smith lives here.")
    assert [e.text for e in direct.ents] == ["Alice Smith"] and not direct._.failures

