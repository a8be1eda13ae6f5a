"""Throughput of distil.OpenAI.v1 vs spacy-llm's OpenAI model against the same slow local server.

An OpenAI-compatible server on 127.0.0.1 (its own process) answers every request after a fixed
delay (100 ms) with a valid NER answer (distil's JSON, or spacy-llm's
``spacy.NER.v3`` line format for spacy-llm's prompts). 200 docs go through
``distil.NER.v1`` + ``distil.OpenAI.v1`` at concurrency 1, 4 and 16, and
through ``spacy.NER.v3`` + spacy-llm's OpenAI model pointed at the same server
(subclassed only to skip its start-up call to the public OpenAI host). The
answer cache is off. Prints docs/s per setting and two RESULT lines.

    .venv/bin/python bench/llm_concurrency.py [--docs 200] [--delay 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import spacy  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy_llm.models.rest.openai.model import OpenAI  # noqa: E402
from spacy_llm.registry import registry  # noqa: E402

from tests.fakeserver import server_process  # noqa: E402

LABELS = ["person", "location", "corporation"]


class NoAuthCheckOpenAI(OpenAI):
    """spacy-llm's OpenAI model, minus its constructor's call to api.openai.com."""

    def _verify_auth(self) -> None:
        pass


@registry.llm_models("bench.NoAuthCheckOpenAI.v1")
def no_auth_check_openai(endpoint: str, name: str = "gpt-3.5-turbo") -> NoAuthCheckOpenAI:
    return NoAuthCheckOpenAI(
        name=name, endpoint=endpoint, config={"temperature": 0.0}, strict=True, max_tries=5, interval=1.0,
        max_request_time=30, context_length=4096,
    )


def responder(body: dict[str, Any]) -> str:
    if "response_format" in body:
        return json.dumps({"person": ["Alice Smith"], "location": ["Paris"]})
    return "1. Alice Smith | True | PERSON | is a person\n2. Paris | True | LOCATION | is a place\n"


def distil_nlp(base_url: str, concurrency: int) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("llm", name="ner", config={
        "task": {"@llm_tasks": "distil.NER.v1", "schema": {"@misc": "distil.NERSchema.v1", "labels": LABELS}},
        "model": {"@llm_models": "distil.OpenAI.v1", "model": "bench", "base_url": base_url,
                  "concurrency": concurrency, "timeout": 30},
    })
    return nlp


def spacy_llm_nlp(base_url: str) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("llm", name="ner", config={
        "task": {"@llm_tasks": "spacy.NER.v3", "labels": [label.upper() for label in LABELS]},
        "model": {"@llm_models": "bench.NoAuthCheckOpenAI.v1", "endpoint": f"{base_url}/chat/completions"},
    })
    return nlp


def docs_per_second(nlp: Language, texts: list[str], check: str) -> float:
    started = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=len(texts)))
    elapsed = time.perf_counter() - started
    assert len(docs) == len(texts) and all(any(e.text == "Alice Smith" for e in d.ents) for d in docs), check
    return len(texts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-bench")  # spacy-llm warns without one; never sent off-host
    texts = [f"Post {i}: Alice Smith says hi from Paris." for i in range(args.docs)]
    with server_process(responder, args.delay) as base_url:
        rates = {}
        for concurrency in (1, 4, 16):
            rates[concurrency] = docs_per_second(distil_nlp(base_url, concurrency), texts, "distil")
            print(f"distil.OpenAI.v1 concurrency {concurrency:2d}: {rates[concurrency]:7.2f} docs/s", flush=True)
        baseline = docs_per_second(spacy_llm_nlp(base_url), texts, "spacy-llm")
        print(f"spacy-llm OpenAI (spacy.NER.v3):  {baseline:7.2f} docs/s", flush=True)
    ideal = 16 / args.delay
    print(f"ideal at concurrency 16: {ideal:.1f} docs/s ({args.docs} docs, {args.delay * 1000:.0f} ms per request)")
    print(f"RESULT concurrency16_vs_spacy_llm={rates[16] / baseline:.2f}")
    print(f"RESULT concurrency16_vs_ideal={rates[16] / ideal:.3f}")


if __name__ == "__main__":
    main()
