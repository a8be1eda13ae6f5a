"""Write the seed pools the shipped LLM configs retrieve their few-shot examples from.

    .venv/bin/python tools/seed_pools.py [--data ../shared/data] [--seed 0]

A seed pool is a small set of gold documents a person labelled, drawn at
random (seeded) from each dataset's *train* split, so it never overlaps a test
split; the projects exclude it from their own train/dev samples (``distil
sample --exclude``) and count it in their human-label budget:

- ``pool_banking77.jsonl``: 10 documents per intent (770), BANKING77 train.csv (CC BY 4.0);
- ``pool_wnut17.jsonl``: 200 sentences of WNUT-17 train (CC BY 4.0);
- ``pool_semeval.jsonl``: 200 sentences of SemEval-2010 Task 8 train (CC BY 3.0);
- ``pool_fire.jsonl``: 200 sentences of FIRE train (CC BY 4.0).

Documents with an entity longer than 60 characters (the NER task's default
``max_mention_chars``: its answer schema could not show them) are left out
before drawing. They are written as distil records (text, entities, relations, cats) into
``distil/prompts/examples/``, where configs name them ``distil:pool_*.jsonl``.
The same data and seed always give the same files; the script prints their
counts, and ``tests/test_llm_retrieval.py`` checks the shipped files against
those counts.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import spacy
from spacy.tokens import Doc

from distil.corpus import read_docs
from distil.pipeline.io.convert import convert
from distil.records import to_record

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "distil" / "prompts" / "examples"
# (output file, input path under the data folder, how many: per intent for BANKING77, documents otherwise)
POOLS = {
    "pool_banking77.jsonl": ("banking77/train.csv", 10),
    "pool_wnut17.jsonl": ("wnut17/wnut17train.conll", 200),
    "pool_semeval.jsonl": ("semeval2010_task8/TRAIN_FILE.TXT", 200),
    "pool_fire.jsonl": ("fire/fire_train.json", 200),
}


def gold_docs(source: Path) -> list[Doc]:
    """Every document of a dataset file, through ``distil convert`` (the reader users get)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gold.spacy"
        convert(source, out)
        return list(read_docs(out, spacy.blank("en")))


MAX_MENTION_CHARS = 60


def draw(docs: list[Doc], size: int, per_label: bool, seed: int) -> list[Doc]:
    """``size`` random documents, or ``size`` per category label when ``per_label``; in a seeded random order."""
    rng = random.Random(seed)
    if not per_label:
        return rng.sample(docs, size)
    by_label: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        by_label[max(doc.cats, key=doc.cats.__getitem__)].append(doc)
    pool = [doc for label in sorted(by_label) for doc in rng.sample(by_label[label], min(size, len(by_label[label])))]
    rng.shuffle(pool)
    return pool


def record(doc: Doc) -> dict[str, object]:
    """The example record of a gold Doc: only what a prompt shows (no scores, no meta; cats only when set)."""
    full = to_record(doc).model_dump()
    row: dict[str, object] = {"text": full["text"]}
    if full["entities"]:
        row["entities"] = [{k: e[k] for k in ("start", "end", "label", "text")} for e in full["entities"]]
    if full["relations"]:
        row["relations"] = [{k: r[k] for k in ("head", "tail", "label")} for r in full["relations"]]
    if full["cats"]:
        best = max(full["cats"], key=full["cats"].__getitem__)
        row["cats"] = {best: 1.0}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name, (relative, size) in POOLS.items():
        docs = [doc for doc in gold_docs(args.data / relative)
                if all(len(ent.text) <= MAX_MENTION_CHARS for ent in doc.ents)]
        pool = draw(docs, size, per_label=name == "pool_banking77.jsonl", seed=args.seed)
        with (OUT / name).open("w", encoding="utf-8") as out:
            for doc in pool:
                out.write(json.dumps(record(doc), ensure_ascii=False) + "\n")
        print(f"{name}: {len(pool)} of {len(docs)} documents from {relative} (seed {args.seed})")


if __name__ == "__main__":
    main()
