"""Usage reporting: LLM models expose distil_usage(), commands collect it without backend-specific code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from distil.components.llm.usage import TracksUsage, Usage
from distil.latency import LatencySketch
from distil.pipeline.cli import run_cli
from distil.pipeline.usage import collect_usage, reset_usage

from .fakeserver import FakeOpenAIServer, Fault, distil_responder
from .llm_support import llm_config, openai_block


class _Model(TracksUsage):
    def __init__(self) -> None:
        self.usage = Usage(price_per_1k_prompt=0.5, price_per_1k_completion=1.0)


class _Wrapper:
    """Shaped like spacy-llm's llm component: the model sits in ``_model``."""

    def __init__(self) -> None:
        self._model = _Model()

    def __call__(self, doc: Doc) -> Doc:
        self._model.usage.add_completion(prompt_tokens=1000, completion_tokens=500, latency=0.2)
        self._model.usage.add_failure("invalid_json")
        return doc


def usage_model(nlp: Language) -> _Model:
    return cast(_Wrapper, nlp.get_pipe("ner"))._model


def test_collect_usage_finds_the_wrapped_model() -> None:
    if not Language.has_factory("test_usage_wrapper"):
        Language.factory("test_usage_wrapper", func=lambda nlp, name: _Wrapper())
    nlp = spacy.blank("en")
    nlp.add_pipe("test_usage_wrapper", name="ner")
    nlp.add_pipe("sentencizer")
    assert collect_usage(nlp)["ner"]["requests"] == 0
    nlp("one")
    nlp("two")
    usage = collect_usage(nlp)
    assert list(usage) == ["ner"]
    figures = usage["ner"]
    assert figures["requests"] == 2 and figures["prompt_tokens"] == 2000 and figures["completion_tokens"] == 1000
    assert figures["cost"] == 2000 * 0.5 / 1000 + 1000 * 1.0 / 1000
    assert figures["latency_p95_ms"] == 200.0 and figures["failures"] == {"invalid_json": 2}
    assert "latencies" not in figures and "latency_sketch" not in figures, "latency data stays out of reports"
    sketch = usage_model(nlp).usage.snapshot()["latency_sketch"]
    assert LatencySketch.from_dict(sketch).count == 2, "snapshots carry the mergeable sketch"
    reset_usage(nlp)
    assert collect_usage(nlp)["ner"]["requests"] == 0


UNGROUNDED = json.dumps({"person": ["Alice Smith", "Nobody Here"]})


def test_run_annotate_and_evaluate_report_the_task_counters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The model's figures and the task's counters (a mention not in the text) reach every command's report.
    with FakeOpenAIServer(distil_responder) as server:
        config = tmp_path / "ner_llm.cfg"
        config.write_text(llm_config("ner", openai_block(server.base_url)), encoding="utf-8")
        text = "Alice Smith lives here."

        server.script(Fault("content", content=UNGROUNDED))
        assert run_cli(["run", str(config), text]) == 0
        err = capsys.readouterr().err
        assert "[ner]" in err and "requests=1" in err and "mentions=2" in err and "ungrounded=1" in err

        inputs = tmp_path / "texts.txt"
        inputs.write_text(text + "\n", encoding="utf-8")
        server.script(Fault("content", content=UNGROUNDED))
        assert run_cli(["annotate", str(config), str(inputs), "--output", str(tmp_path / "out")]) == 0
        assert "ungrounded=1" in capsys.readouterr().err
        usage = json.loads((tmp_path / "out" / "report.json").read_text())["usage"]["ner"]
        assert usage["ungrounded"] == 1 and usage["failed_docs"] == 0 and usage["requests"] == 1

        gold = tmp_path / "gold.jsonl"
        entity = {"start": 0, "end": 11, "label": "person", "text": "Alice Smith"}
        gold.write_text(json.dumps({"text": text, "entities": [entity]}) + "\n", encoding="utf-8")
        server.script(Fault("content", content=UNGROUNDED))
        report_path = tmp_path / "eval.json"
        assert run_cli(["evaluate", str(config), str(gold), "--no-cache", "--output", str(report_path)]) == 0
        out = capsys.readouterr()
        assert "Usage [ner]:" in out.out + out.err and "ungrounded=1" in out.out + out.err
        assert json.loads(report_path.read_text())["usage"]["ner"]["ungrounded"] == 1

