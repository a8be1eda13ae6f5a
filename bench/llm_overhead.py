"""Framework overhead of the LLM backend: a fully warm answer cache vs the rules pipeline, same docs.

With every answer in the SQLite cache no model runs, so what is left is
distil's own work per doc: rendering the prompt, hashing it, the cache lookup,
validating the JSON, grounding mentions and writing the Doc. The first pass
warms the cache (slow when it is cold: the model runs); the second is timed
and must be served from the cache only. The rules pipeline runs on the same
texts.

    distil convert /work/shared/data/wnut17/emerging.test.annotated /tmp/llm_eval/wnut_test.spacy
    .venv/bin/python bench/llm_overhead.py --gold /tmp/llm_eval/wnut_test.spacy --limit 200 \
        --cache /tmp/llm_eval/cache.sqlite
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import distil  # noqa: E402
from distil.corpus import read_docs  # noqa: E402
from distil.pipeline.usage import collect_usage, reset_usage, usage_totals  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm-config", default="configs/ner_llm.cfg")
    parser.add_argument("--rules-config", default="configs/ner_rules.cfg")
    parser.add_argument("--gold", default="/tmp/llm_eval/wnut_test.spacy")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--cache", default="/tmp/llm_eval/cache.sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the best is reported")
    args = parser.parse_args()
    llm = distil.load(REPO / args.llm_config, {"paths.llm_cache": args.cache, "llm.cache": True})
    rules = distil.load(REPO / args.rules_config)
    texts = [doc.text for doc in islice(read_docs(args.gold, llm), args.limit)]

    started = time.perf_counter()
    list(llm.pipe(texts))
    warm = usage_totals(collect_usage(llm), ("requests", "cache_hits"))
    print(f"warming pass: {time.perf_counter() - started:.1f} s, {warm.get('requests', 0):.0f} model requests, "
          f"{warm.get('cache_hits', 0):.0f} cache hits")

    def best(nlp, check_cache: bool) -> float:  # type: ignore[no-untyped-def]
        rates = []
        for _ in range(args.repeat):
            reset_usage(nlp)
            started = time.perf_counter()
            docs = list(nlp.pipe(texts))
            rates.append(len(docs) / (time.perf_counter() - started))
            if check_cache:
                requests = usage_totals(collect_usage(nlp), ("requests",)).get("requests")
                assert requests == 0, "the timed pass must not call the model"
        return max(rates)

    llm_rate = best(llm, True)
    rules_rate = best(rules, False)
    print(f"{len(texts)} docs from {args.gold}")
    print(f"  {args.llm_config} (warm cache): {llm_rate:8.1f} docs/s")
    print(f"  {args.rules_config}:             {rules_rate:8.1f} docs/s")
    print(f"RESULT llm_warm_cache_vs_rules={llm_rate / rules_rate:.3f}")


if __name__ == "__main__":
    main()
