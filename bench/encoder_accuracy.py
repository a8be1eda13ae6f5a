"""Accuracy of trained encoder model directories on a gold test set, fp32 and int8 side by side.

Also holds the held-out split used for corpora without a dev set (BANKING77,
SemEval-2010 Task 8): a seeded 10% of train.

    python bench/encoder_accuracy.py split TRAIN.spacy TRAIN_OUT.spacy DEV_OUT.spacy [--fraction 0.1 --seed 0]
    python bench/encoder_accuracy.py evaluate TASK MODEL_DIR TEST.spacy [--threads 2] [--semeval]

``evaluate`` runs the model through the distil component (onnxruntime) on
copies of the gold docs (entities kept for rel) and prints P/R/F (ner),
accuracy (textcat) or micro and macro F1 (rel; ``--semeval`` keeps one
relation per sentence, which makes macro F1 the official direction-aware
SemEval-2010 Task 8 score, Other excluded).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import spacy

from distil.components.encoder.manifest import Manifest
from distil.components.encoder.ner import annotate_entities
from distil.components.encoder.relations import annotate_relations
from distil.components.encoder.scoring import score_cats, score_entities, score_relations
from distil.components.encoder.session import EncoderSession
from distil.components.encoder.textcat import annotate_cats
from distil.pipeline.io.corpus import read_docs, write_docs


def split(args: argparse.Namespace) -> None:
    nlp = spacy.blank("en")
    docs = list(read_docs(args.train, nlp))
    order = list(range(len(docs)))
    random.Random(args.seed).shuffle(order)
    n_dev = round(len(docs) * args.fraction)
    dev = set(order[:n_dev])
    write_docs([d for i, d in enumerate(docs) if i not in dev], args.train_out)
    write_docs([d for i, d in enumerate(docs) if i in dev], args.dev_out)
    print(f"{len(docs) - n_dev} train, {n_dev} dev (seed {args.seed})")


def blank(doc: spacy.tokens.Doc, keep_ents: bool) -> spacy.tokens.Doc:
    from distil.components.encoder.train.examples import blank_copy

    return blank_copy(doc, "rel" if keep_ents else "ner")


def evaluate(args: argparse.Namespace) -> None:
    nlp = spacy.blank("en")
    gold = list(read_docs(args.test, nlp))
    manifest = Manifest.from_disk(args.model)
    schema = manifest.task_schema()
    results = {}
    for precision in ("fp32", "int8"):
        session = EncoderSession(args.model, precision, args.threads)
        docs = [blank(doc, args.task == "rel") for doc in gold]
        started = time.perf_counter()
        if args.task == "ner":
            annotate_entities(session, docs, schema.label_names, 64)
            scores = score_entities(docs, gold)
            line = "P {p:.4f} R {r:.4f} F {f:.4f}".format(**scores["micro"])  # type: ignore[arg-type]
        elif args.task == "textcat":
            annotate_cats(session, docs, schema, 64)  # type: ignore[arg-type]
            scores = score_cats(docs, gold, schema)  # type: ignore[arg-type]
            line = f"accuracy {scores['accuracy']:.4f} macro-F {scores['macro_f']:.4f}"
        else:
            annotate_relations(session, docs, schema, 64)  # type: ignore[arg-type]
            scores = score_relations(docs, gold, schema.label_names, top1=args.semeval)
            line = f"micro-F {scores['micro']['f']:.4f} macro-F {scores['macro_f']:.4f}"  # type: ignore[index]
        seconds = time.perf_counter() - started
        results[precision] = scores
        print(f"{args.task} {precision}: {line} ({len(docs)} docs, {seconds:.1f}s, {args.threads} threads)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_split = sub.add_parser("split")
    p_split.add_argument("train")
    p_split.add_argument("train_out")
    p_split.add_argument("dev_out")
    p_split.add_argument("--fraction", type=float, default=0.1)
    p_split.add_argument("--seed", type=int, default=0)
    p_eval = sub.add_parser("evaluate")
    p_eval.add_argument("task", choices=["ner", "textcat", "rel"])
    p_eval.add_argument("model")
    p_eval.add_argument("test")
    p_eval.add_argument("--threads", type=int, default=2)
    p_eval.add_argument("--semeval", action="store_true")
    p_eval.add_argument("--json")
    args = parser.parse_args(argv)
    split(args) if args.command == "split" else evaluate(args)


if __name__ == "__main__":
    main(sys.argv[1:])
