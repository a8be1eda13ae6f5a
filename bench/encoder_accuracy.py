"""Accuracy of trained encoder model directories on a gold test set, fp32 and int8 side by side.

Also holds the held-out split used for corpora without a dev set (BANKING77,
SemEval-2010 Task 8): a seeded 10% of train.

    python bench/encoder_accuracy.py split TRAIN.spacy TRAIN_OUT.spacy DEV_OUT.spacy [--fraction 0.1 --seed 0]
    python bench/encoder_accuracy.py evaluate TASK MODEL_DIR TEST.spacy [--threads 2] [--semeval]

``evaluate`` runs the model through the distil component (onnxruntime) on
copies of the gold docs (entities kept for rel) and scores them with
``distil.scoring``, the scorer of ``distil evaluate`` (same keys): P/R/F (ner),
accuracy and macro F1 (textcat), micro and macro F1 (rel; ``--semeval`` adds
the official direction-aware SemEval-2010 Task 8 measure, Other excluded,
``rel_semeval_macro_f``).
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
from distil.components.encoder.session import EncoderSession
from distil.components.encoder.textcat import annotate_cats
from distil.corpus import read_docs, write_docs
from distil.scoring import score_semeval, score_task, semeval_answers


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
    from distil.training.examples import blank_copy

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
        elif args.task == "textcat":
            annotate_cats(session, docs, schema, 64)  # type: ignore[arg-type]
        else:
            annotate_relations(session, docs, schema, 64)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        pairs = list(zip(docs, gold, strict=True))
        scores = score_task(args.task, pairs, schema)
        if args.task == "ner":
            line = f"P {scores['ents_p'] or 0:.4f} R {scores['ents_r'] or 0:.4f} F {scores['ents_f'] or 0:.4f}"
        elif args.task == "textcat":
            line = f"accuracy {scores['cats_accuracy'] or 0:.4f} macro-F {scores['cats_macro_f']:.4f}"
        else:
            line = f"micro-F {scores['rel_micro_f'] or 0:.4f} macro-F {scores['rel_macro_f'] or 0:.4f}"
            if args.semeval:
                scores.update(score_semeval(semeval_answers(pairs)[0]))
                line += f" SemEval macro-F {scores['rel_semeval_macro_f'] or 0:.4f}"
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
