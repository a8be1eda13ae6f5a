"""BANKING77 teacher: static examples against retrieved examples and label shortlists, with a kNN baseline.

The embedded model (packaged Gemma 3 270M, llama.cpp in process, answer cache
off) classifies a seeded random sample of the BANKING77 test set (the file is
sorted by intent: its first N rows would cover a handful of intents) with the
shipped ``configs/textcat_llm.cfg`` task settings, in these variants:

- ``static``: the shipped few-shot examples, all 77 labels offered (today's default);
- ``retrieved``: ``distil.RetrievedExamples.v1`` over a seed pool of 10 gold
  documents per intent drawn from train (the projects' human-label budget), k=4;
- ``retrieved+shortlist``: the same, offering each document only its
  ``--shortlist`` likeliest labels (``distil.TextCat.v1`` ``shortlist``).

The non-LLM baseline is a kNN vote over the same pool with the same MiniLM
embeddings (weighted by similarity, k=5): what the teacher must beat to be
worth its cost. Accuracy comes from ``distil.scoring.score_categories``, the
scorer of ``distil evaluate``.

    .venv/bin/python bench/teacher_textcat.py [--docs 200] [--threads 1] [--shortlist 3]

Ends with ``RESULT teacher_textcat_accuracy=`` (retrieved+shortlist, percent),
``RESULT static_textcat_accuracy=``, ``RESULT knn_textcat_accuracy=`` and
``RESULT teacher_docs_per_s_vs_static=``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import spacy  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from distil.components.llm.retrieval import make_retrieved_examples, normalise_text  # noqa: E402
from distil.corpus import write_docs  # noqa: E402
from distil.pipeline.config import read_config  # noqa: E402
from distil.pipeline.io.conversion_report import ConversionReport  # noqa: E402
from distil.pipeline.io.tabular import read_csv  # noqa: E402
from distil.pipeline.usage import collect_usage  # noqa: E402
from distil.scoring import score_categories  # noqa: E402

DATA = Path("/work/shared/data/banking77")
CONFIG = REPO / "configs" / "textcat_llm.cfg"
LABELS: list[str] = list(read_config(CONFIG)["schemas"]["textcat"]["labels"])


def read_split(name: str, nlp: Language) -> list[Doc]:
    return list(read_csv(DATA / f"{name}.csv", nlp, ConversionReport(), labels=LABELS))


def gold_label(doc: Doc) -> str:
    return max(doc.cats, key=doc.cats.__getitem__)


def seed_pool(train: list[Doc], per_label: int, seed: int) -> list[Doc]:
    by_label: dict[str, list[Doc]] = defaultdict(list)
    for doc in train:
        by_label[gold_label(doc)].append(doc)
    rng = random.Random(seed)
    pool = [doc for label in sorted(by_label) for doc in rng.sample(by_label[label], min(per_label, len(by_label[label])))]
    rng.shuffle(pool)
    return pool


def teacher(labels: list[str], threads: int, examples: Any, shortlist: int | None) -> Language:
    nlp = spacy.blank("en")
    task: dict[str, Any] = {"@llm_tasks": "distil.TextCat.v1", "examples": examples,
                            "schema": {"@misc": "distil.TextCatSchema.v1", "labels": labels, "exclusive": True}}
    if shortlist:
        task["shortlist"] = shortlist
    nlp.add_pipe("llm", name="textcat", config={
        "task": task,
        "model": {"@llm_models": "distil.LlamaCpp.v1", "n_threads": threads, "n_ctx": 2048, "max_reasks": 1},
    })
    return nlp


def accuracy(pairs: list[tuple[Doc, Doc]], labels: list[str]) -> float:
    scores = score_categories(pairs, labels=labels, exclusive=True)
    return float(scores["cats_accuracy"] or 0.0)


def run(nlp: Language, gold: list[Doc], labels: list[str]) -> dict[str, Any]:
    nlp(gold[0].text)  # load the model and compile the grammar before timing
    started = time.perf_counter()
    predicted = [nlp(doc.text) for doc in gold[1:]]
    elapsed = time.perf_counter() - started
    usage = collect_usage(nlp).get("textcat", {})
    return {"accuracy": accuracy(list(zip(predicted, gold[1:], strict=True)), labels),
            "docs_per_s": len(predicted) / elapsed, "failures": usage.get("failures", {})}


def knn(pool: list[Doc], gold: list[Doc], labels: list[str], k: int, pool_file: str, cache_dir: str) -> float:
    selector = make_retrieved_examples(pool=pool_file, k=k, cache_dir=cache_dir)
    matrix = selector.pool_embeddings()
    queries = selector.embedder.embed([normalise_text(doc.text) for doc in gold])
    pool_labels = [gold_label(doc) for doc in selector.docs]
    nlp = spacy.blank("en")
    pairs = []
    for doc, row in zip(gold, queries @ matrix.T, strict=True):
        votes: defaultdict[str, float] = defaultdict(float)
        for index in np.argsort(-row)[:k]:
            votes[pool_labels[int(index)]] += float(row[int(index)])
        guess = nlp.make_doc(doc.text)
        best = max(votes, key=votes.__getitem__)
        guess.cats = {label: float(label == best) for label in labels}
        pairs.append((guess, doc))
    return accuracy(pairs, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="test documents (a seeded random sample), plus one warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shortlist", type=int, default=3)
    parser.add_argument("--per-label", type=int, default=10, help="seed pool documents per intent, from train")
    parser.add_argument("--k", type=int, default=4, help="retrieved examples per document")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="static,retrieved,retrieved+shortlist")
    args = parser.parse_args()
    labels = LABELS
    examples = read_config(CONFIG)["paths"]["textcat_examples"]
    nlp0 = spacy.blank("en")
    test = read_split("test", nlp0)
    gold = random.Random(args.seed).sample(test, args.docs + 1)
    pool = seed_pool(read_split("train", nlp0), args.per_label, args.seed)
    print(f"BANKING77: {args.docs} test documents (seed {args.seed}, {len({gold_label(d) for d in gold})} intents), "
          f"seed pool {len(pool)} train documents ({args.per_label} per intent), {args.threads} thread(s)", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pool_file = str(Path(tmp) / "pool.spacy")
        write_docs(pool, pool_file)
        cache_dir = str(Path(tmp) / "embeddings")
        knn_accuracy = knn(pool, gold[1:], labels, 5, pool_file, cache_dir)
        print(f"  kNN vote (k=5, same pool and embeddings)  accuracy {100 * knn_accuracy:.1f}", flush=True)
        retrieved = {"@misc": "distil.RetrievedExamples.v1", "pool": pool_file, "k": args.k, "cache_dir": cache_dir}
        settings = {"static": (examples, None), "retrieved": (retrieved, None),
                    "retrieved+shortlist": (retrieved, args.shortlist)}
        for name in args.variants.split(","):
            chosen, shortlist = settings[name]
            results[name] = run(teacher(labels, args.threads, chosen, shortlist), gold, labels)
            r = results[name]
            print(f"  {name:38s}  accuracy {100 * r['accuracy']:.1f}  {r['docs_per_s']:.2f} docs/s  "
                  f"failures {r['failures']}", flush=True)
    best = results.get("retrieved+shortlist")
    static = results.get("static")
    if best is not None:
        print(f"RESULT teacher_textcat_accuracy={100 * best['accuracy']:.1f}")
    if static is not None:
        print(f"RESULT static_textcat_accuracy={100 * static['accuracy']:.1f}")
    print(f"RESULT knn_textcat_accuracy={100 * knn_accuracy:.1f}")
    if best is not None and static is not None:
        print(f"RESULT teacher_docs_per_s_vs_static={best['docs_per_s'] / static['docs_per_s']:.2f}")


if __name__ == "__main__":
    main()
