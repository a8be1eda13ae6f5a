"""Speed of the embedded model (packaged Gemma 3 270M, llama.cpp in process) per task.

For each task, N documents of its test set go through the shipped embedded
config with the answer cache off: docs per second, and prompt / completion
tokens per second of wall time (prompt tokens include the few-shot prefix
that llama.cpp keeps in its KV cache, so they are not all evaluated).

    distil convert /work/shared/data/wnut17/emerging.test.annotated /tmp/llm_eval/wnut_test.spacy
    distil convert /work/shared/data/banking77/test.csv /tmp/llm_eval/banking_test.spacy \
        --labels /work/shared/data/banking77/categories.json
    distil convert /work/shared/data/semeval2010_task8/TEST_FILE_FULL.TXT /tmp/llm_eval/semeval_test.spacy
    .venv/bin/python bench/llm_embedded.py --docs 20 --threads 1
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import distil  # noqa: E402
from distil.corpus import read_docs  # noqa: E402
from distil.pipeline.usage import collect_usage, reset_usage  # noqa: E402
from distil.records import from_record  # noqa: E402

GOLD = {
    "ner": "/tmp/llm_eval/wnut_test.spacy",
    "textcat": "/tmp/llm_eval/banking_test.spacy",
    "rel": "/tmp/llm_eval/semeval_test.spacy",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tasks", default="ner,textcat,rel")
    args = parser.parse_args()
    for task in args.tasks.split(","):
        nlp = distil.load(REPO / f"configs/{task}_llm.cfg", {"llm.cache": False, "llm.n_threads": args.threads})
        gold = list(read_docs(GOLD[task], nlp))
        if task == "textcat":  # the BANKING77 test file is sorted by label
            random.Random(0).shuffle(gold)
        inputs = [
            from_record({"text": d.text, "entities": [
                {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in d.ents
            ]}, nlp) if task == "rel" else nlp.make_doc(d.text)
            for d in gold[: args.docs]
        ]
        nlp(nlp.make_doc("warm up the model load") if task != "rel" else inputs[0])
        reset_usage(nlp)
        started = time.perf_counter()
        for doc in inputs:
            nlp(doc)
        elapsed = time.perf_counter() - started
        usage = collect_usage(nlp)[task]
        print(
            f"{task:8s} {len(inputs)} docs, {args.threads} thread(s): {len(inputs) / elapsed:5.2f} docs/s, "
            f"{usage['completion_tokens'] / elapsed:6.1f} completion tok/s, {usage['prompt_tokens'] / elapsed:7.1f} "
            f"prompt tok/s, latency p50 {usage['latency_p50_ms'] / 1000:.2f} s, failures {usage.get('failures', {})}",
            flush=True,
        )


if __name__ == "__main__":
    main()
