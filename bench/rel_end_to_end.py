"""Relations end to end on FIRE: today's ner+rel students against the new ones, accuracy and speed in one run.

    python bench/rel_end_to_end.py [--data ../shared/data/fire] [--work /tmp/rel_e2e] [--threads 2]
        [--max-minutes M [--cap-today]] [--max-epochs N] [--train-limit N] [--test-limit N] [--base-model DIR] [--reuse] [--only MODELS]

Trains, on FIRE's train split with its dev split for stopping, with the schema
of ``configs/fire_encoder.cfg``:

- **today**: an NER student and a per-pair relation student at the old
  defaults (5 epochs, patience 2, argmax decision: no threshold);
- **new**: an NER student and a one-pass relation student at the new defaults
  (train until dev stops improving: at most 20 epochs, patience 3; the
  no-relation decision tuned on dev);
- **pairs-new**: a per-pair relation student with the same new settings, for
  the relation score with gold entities.

Then evaluates on FIRE's test split with int8 models, through ``distil
evaluate``'s function: end-to-end strict relation micro-F1 (both entity spans,
both entity types and the relation label right), relation micro-F1 with gold
entities, and the words per second of the ner+rel pipeline on the test
sentences with 3 or more gold entities (median of 3 timed runs). Prints::

    RESULT rel_e2e_f1=...                  new pipeline, strict end-to-end relation micro-F1 (%)
    RESULT rel_e2e_f1_vs_today=...         its ratio to today's (target >= 1.5)
    RESULT rel_words_per_s_vs_today=...    words/s ratio, sentences with >= 3 entities (target >= 5)
    RESULT rel_gold_ents_f1_gap=...        per-pair (new settings) minus one-pass F1 with gold entities (target <= 2)

``--max-minutes`` caps each training run with the new settings (today's
baseline keeps its full 5 epochs, as today's defaults had no time cap, unless
``--cap-today``); ``--max-epochs`` caps the epochs of every run;
``--train-limit``/``--test-limit`` take a seeded sample of N documents, for a
quick check of the script, not for the figures. Never run it beside the LLM: the
trainings share the two cores. ``--reuse`` keeps model directories already
trained in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import spacy

import distil
from distil.corpus import read_docs, write_docs
from distil.pipeline.cli.train import schema_from_config
from distil.pipeline.evaluate import evaluate
from distil.pipeline.io.convert import convert
from distil.pipeline.sample import take_sample

REPO = Path(__file__).resolve().parent.parent

CONFIG = REPO / "configs" / "fire_encoder.cfg"
REL_CONFIG = REPO / "configs" / "fire_rel_encoder.cfg"


def prepare(data: Path, work: Path, train_limit: int | None, test_limit: int | None) -> dict[str, Path]:
    """Convert FIRE's splits to DocBins in ``work`` (a seeded random sample of N documents when limited)."""
    nlp = spacy.blank("en")
    out: dict[str, Path] = {}
    for split, limit in (("train", train_limit), ("dev", None), ("test", test_limit)):
        full = work / f"{split}.spacy"
        if not full.exists():
            convert(data / f"fire_{split}.json", full)
        if limit:
            limited = work / f"{split}-{limit}.spacy"
            write_docs(take_sample(list(read_docs(full, nlp)), limit, seed=0), limited)
            full = limited
        out[split] = full
    return out


def train_model(name: str, task: str, paths: dict[str, Path], work: Path, settings: Any, base: str | None,
                reuse: bool) -> Path:
    """Train one student into ``work/name`` (or reuse it) and return its directory."""
    from distil.training.loop import train

    output = work / name
    if reuse and (output / "manifest.json").exists():
        print(f"{name}: reusing {output}")
        return output
    started = time.monotonic()
    result = train(task, paths["train"], paths["dev"], output, base_model=base, schema=schema_from_config(CONFIG, task),
                   settings=settings, progress=False, log=lambda line: print(f"  {name}: {line}"))
    print(f"{name}: best dev {result.best_score:.4f} at epoch {result.best_epoch}, "
          f"{(time.monotonic() - started) / 60:.1f} min")
    return output


def pipeline_scores(ner: Path, rel: Path, test: Path, threads: int) -> dict[str, Any]:
    """End-to-end scores (with the gold-entity pass) and the words/s on sentences with >= 3 gold entities."""
    overrides = {"paths.ner_model": str(ner), "paths.rel_model": str(rel),
                 "components.ner.threads": threads, "components.rel.threads": threads}
    nlp = distil.load(CONFIG, overrides)
    golds = list(read_docs(test, nlp))
    report = evaluate(nlp, golds, repeats=1, warmup_docs=0, min_run_seconds=0.0)
    crowded = [doc for doc in golds if len(doc.ents) >= 3]
    timed = evaluate(nlp, crowded, rel_gold_entities=False, repeats=3, warmup_docs=10, min_run_seconds=0.5)
    return {**report.scores, "words_per_second_3plus": timed.speed["words_per_second"], "docs_3plus": len(crowded)}


def gold_entity_f1(rel: Path, test: Path, threads: int) -> float:
    """Relation micro-F1 (%) of a relation student alone, given the gold entities of the test documents."""
    nlp = distil.load(REL_CONFIG, {"paths.model": str(rel), "components.rel.threads": threads})
    report = evaluate(nlp, read_docs(test, nlp), repeats=1, warmup_docs=0, min_run_seconds=0.0)
    return 100 * float(report.scores["rel_micro_f"] or 0.0)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "fire")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rel_e2e"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="time cap of each training run with the new settings (today's too with --cap-today)")
    parser.add_argument("--cap-today", action="store_true", help="apply --max-minutes to today's baseline too")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch cap of each training run")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--only", default=None,
                        help="comma-separated models to train (today-ner, today-rel, new-ner, new-rel, pairs-new-rel); "
                             "the others are reused from --work where trained, and the figures that need a missing "
                             "model are skipped")
    args = parser.parse_args(argv)
    names = ("today-ner", "today-rel", "new-ner", "new-rel", "pairs-new-rel")
    if args.only and set(args.only.split(",")) - set(names):
        parser.error(f"--only: unknown model(s) {sorted(set(args.only.split(',')) - set(names))}; expected some of {names}")
    from distil.training.loop import TrainSettings

    args.work.mkdir(parents=True, exist_ok=True)
    paths = prepare(args.data, args.work, args.train_limit, args.test_limit)

    def capped(settings: TrainSettings, time_cap: bool = True) -> TrainSettings:
        changes: dict[str, Any] = {"threads": args.threads}
        if args.max_minutes is not None and time_cap:
            changes["max_minutes"] = args.max_minutes
        if args.max_epochs is not None:
            changes["epochs"] = min(settings.epochs, args.max_epochs)
        return replace(settings, **changes)

    # Today's defaults had no time cap: the baseline gets its full 5 epochs unless --cap-today says otherwise,
    # so that capping the new runs can only make the new models look worse, never the baseline.
    today = capped(TrainSettings(epochs=5, patience=2, max_minutes=None, architecture="pairs", tune_threshold=False),
                   time_cap=args.cap_today)
    new = capped(TrainSettings())
    plan = {
        "today-ner": ("ner", today),
        "today-rel": ("rel", today),
        "new-ner": ("ner", new),
        "new-rel": ("rel", replace(new, architecture="one_pass")),
        "pairs-new-rel": ("rel", new),
    }
    only = set(args.only.split(",")) if args.only else set(plan)
    models: dict[str, Path] = {}
    for name, (task, settings) in plan.items():
        if name in only:
            models[name] = train_model(name, task, paths, args.work, settings, args.base_model, args.reuse)
        elif (args.work / name / "manifest.json").exists():
            models[name] = args.work / name
    missing = [name for name in plan if name not in models]
    if missing:
        print(f"not trained (yet): {', '.join(missing)}; the figures that need them are skipped")
    results: dict[str, Any] = {"settings": {key: str(value) for key, value in vars(args).items()}}
    for name in ("today", "new"):
        if f"{name}-ner" in models and f"{name}-rel" in models:
            results[name] = pipeline_scores(models[f"{name}-ner"], models[f"{name}-rel"], paths["test"], args.threads)
    gold = {key: gold_entity_f1(models[model], paths["test"], args.threads)
            for key, model in (("one_pass", "new-rel"), ("pairs_new", "pairs-new-rel")) if model in models}
    results["gold_ents_f1"] = gold
    (args.work / "results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    for name in ("today", "new"):
        if name not in results:
            continue
        r = results[name]
        print(f"{name}: ents F {100 * (r.get('ents_f') or 0):.1f}, relations strict micro-F "
              f"{100 * (r.get('rel_strict_micro_f') or 0):.1f} (P {100 * (r.get('rel_strict_micro_p') or 0):.1f}, "
              f"R {100 * (r.get('rel_strict_micro_r') or 0):.1f}), with gold entities "
              f"{100 * (r.get('rel_gold_ents_micro_f') or 0):.1f}; {r['words_per_second_3plus']:.0f} words/s on "
              f"{r['docs_3plus']} sentences with >= 3 entities")
    print("relations with gold entities: " + ", ".join(f"{key} {value:.1f}" for key, value in gold.items()))
    if "new" in results:
        new_f = 100 * float(results["new"].get("rel_strict_micro_f") or 0.0)
        print(f"RESULT rel_e2e_f1={new_f:.1f}")
        if "today" in results:
            today_f = 100 * float(results["today"].get("rel_strict_micro_f") or 0.0)
            print(f"RESULT rel_e2e_f1_vs_today={new_f / today_f if today_f else float('inf'):.2f}")
            speed = results["new"]["words_per_second_3plus"] / results["today"]["words_per_second_3plus"]
            print(f"RESULT rel_words_per_s_vs_today={speed:.2f}")
    if len(gold) == 2:
        print(f"RESULT rel_gold_ents_f1_gap={gold['pairs_new'] - gold['one_pass']:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
