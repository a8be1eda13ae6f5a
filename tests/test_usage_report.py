"""Usage reporting: LLM models expose distil_usage(), commands collect it without backend-specific code."""

from __future__ import annotations

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from distil.components.llm.usage import ReportsUsage, Usage
from distil.pipeline.usage import collect_usage


class _Model(ReportsUsage):
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
    assert "latencies" not in figures, "raw latency lists stay out of reports"
