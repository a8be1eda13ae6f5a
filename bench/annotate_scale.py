"""Annotation at scale: the local engine against ``--engine ray`` with 1, 2 and 4 replicas, in one run.

Two workloads, each through :func:`distil.pipeline.annotate.annotate` into a
fresh annotation store (the same code path as ``distil annotate``):

- **I/O-bound (LLM)**: ``distil.NER.v1`` + ``distil.OpenAI.v1`` (concurrency
  ``--concurrency`` per replica, cache off) against an OpenAI-compatible server
  on 127.0.0.1, in its own process, that answers every request after
  ``--delay`` (100 ms). ``--docs`` (1,000) documents, local engine, then Ray
  with 1, 2 and 4 replicas of ``--llm-cpus`` (0.25) CPUs each.
- **CPU-bound (encoder)**: the int8 ONNX NER student (``--model``; without it
  a small one is trained first, as in ``encoder_throughput.py``) on WNUT-17
  test tweets, local engine against Ray with one replica holding the same
  threads: the per-document overhead of Ray.

Rates are documents per second of the annotation loop (first block sent to
last block stored); starting Ray and the replicas (loading the pipeline) is
timed apart and printed, as a cluster is started once for many jobs. Every
run is checked: all documents stored, once each. Ends with::

    RESULT ray4_vs_local=...       Ray, 4 replicas, over the local engine, LLM path (target >= 3.5)
    RESULT ray_overhead_pct=...    encoder: (local docs/s / Ray 1 replica docs/s - 1) x 100 (target <= 20)

    python bench/annotate_scale.py [--docs 1000] [--delay 0.1] [--concurrency 4] [--model DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import spacy  # noqa: E402

from distil.pipeline.annotate import AnnotateReport, Engine, LocalEngine, annotate, read_records  # noqa: E402
from distil.pipeline.config import load_pipeline  # noqa: E402
from distil.pipeline.io.texts import TextItem  # noqa: E402
from tests.fakeserver import server_process  # noqa: E402

LABELS = ["person", "location", "corporation"]


def responder(body: dict[str, Any]) -> str:
    """A valid NER answer for every prompt (the benchmark measures the engines, not the model)."""
    return json.dumps({"person": ["Alice Smith"], "location": ["Paris"]})


def llm_config(path: Path, base_url: str, concurrency: int) -> Path:
    labels = "\n".join(f'{label} = "{label}"' for label in LABELS)
    path.write_text(
        f'[nlp]\nlang = "en"\npipeline = ["ner"]\n\n[schemas]\n\n[schemas.ner]\n@misc = "distil.NERSchema.v1"\n\n'
        f'[schemas.ner.labels]\n{labels}\n\n[components]\n\n[components.ner]\nfactory = "llm"\nsave_io = false\n\n'
        f'[components.ner.task]\n@llm_tasks = "distil.NER.v1"\nschema = ${{schemas.ner}}\n\n'
        f'[components.ner.model]\n@llm_models = "distil.OpenAI.v1"\nmodel = "bench"\nbase_url = "{base_url}"\n'
        f"concurrency = {concurrency}\ntimeout = 30\n",
        encoding="utf-8",
    )
    return path


def items_of(texts: list[str]) -> list[TextItem]:
    return [TextItem(text=text, source="bench", line=n) for n, text in enumerate(texts, start=1)]


def timed(engine: Engine, texts: list[str], out: Path, batch_size: int) -> AnnotateReport:
    """One annotation run into a fresh store; checks that every text is stored once."""
    report = annotate(None, items_of(texts), out, engine=engine, batch_size=batch_size)
    stored = [r.text for r in read_records(out)]
    assert sorted(stored) == sorted(set(texts)) and len(stored) == len(set(texts)), "every document stored once"
    failed = sum(report.failures.values())
    assert failed == 0, f"{failed} failures: {dict(report.failures)}"
    return report


def ray_rate(config: Path, overrides: dict[str, Any], replicas: int, cpus: float, texts: list[str], out: Path,
             batch_size: int, blocks_per_replica: int) -> tuple[float, float]:
    """(docs/s of the loop, seconds to start the replicas) for Ray with ``replicas`` replicas."""
    from distil.engines.ray import RayEngine, RaySettings

    started = time.perf_counter()
    settings = RaySettings(replicas=replicas, cpus_per_replica=cpus, blocks_per_replica=blocks_per_replica)
    with RayEngine(config, overrides, settings) as engine:
        startup = time.perf_counter() - started
        report = timed(engine, texts, out, batch_size)
    return report.docs_per_second, startup


def encoder_workload(args: argparse.Namespace, work: Path) -> tuple[Path, list[str]]:
    """The NER student to run (given, or a small one trained now) and ``--encoder-docs`` WNUT-17 test tweets."""
    from encoder_throughput import corpora, small_model

    from distil.corpus import read_docs

    train, dev, test = corpora("ner", args.data, work)
    model = Path(args.model) if args.model is not None else small_model("ner", train, dev, work, args.threads)
    texts = list(dict.fromkeys(doc.text for doc in read_docs(test, spacy.blank("en")) if doc.text.strip()))
    return model, texts[: args.encoder_docs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--llm-cpus", type=float, default=0.25, help="CPUs reserved per LLM replica")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", type=Path, help="NER model directory from distil train (default: train a small one)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--encoder-docs", type=int, default=1000, help="WNUT-17 test tweets (at most 1,287)")
    parser.add_argument("--skip-encoder", action="store_true")
    args = parser.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="annotate_scale_"))
    texts = [f"Post {i}: Alice Smith says hi from Paris." for i in range(args.docs)]
    print(f"machine: {os.cpu_count()} CPUs; {args.docs} docs, server delay {args.delay * 1000:.0f} ms, "
          f"concurrency {args.concurrency} per replica, blocks of {args.batch_size}", flush=True)
    rates: dict[str, float] = {}
    with server_process(responder, args.delay) as base_url:
        config = llm_config(work / "llm.cfg", base_url, args.concurrency)
        overrides: dict[str, Any] = {}
        nlp = load_pipeline(config, overrides)
        rates["local"] = timed(LocalEngine(nlp), texts, work / "llm-local", args.batch_size).docs_per_second
        print(f"LLM local engine:      {rates['local']:7.1f} docs/s", flush=True)
        started = time.perf_counter()
        ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
        print(f"Ray local instance started in {time.perf_counter() - started:.1f} s", flush=True)
        for replicas in (1, 2, 4):
            rate, startup = ray_rate(config, overrides, replicas, args.llm_cpus, texts, work / f"llm-ray{replicas}",
                                     args.batch_size, 2)
            rates[f"ray{replicas}"] = rate
            print(f"LLM Ray, {replicas} replica(s): {rate:7.1f} docs/s ({rate / rates['local']:.2f}x local; "
                  f"replicas ready in {startup:.1f} s)", flush=True)
    ideal = args.concurrency / args.delay
    print(f"ideal per replica: {ideal:.1f} docs/s")
    overhead: Optional[float] = None
    if not args.skip_encoder:
        model, enc_texts = encoder_workload(args, work)
        config = REPO / "configs" / "ner_encoder.cfg"
        enc_overrides = {"paths.model": str(model), "components.ner.threads": args.threads}
        nlp = load_pipeline(config, enc_overrides)
        timed(LocalEngine(nlp), enc_texts[:64], work / "enc-warm", 32)
        local = timed(LocalEngine(nlp), enc_texts, work / "enc-local", 32).docs_per_second
        remote, startup = ray_rate(config, enc_overrides, 1, float(args.threads), enc_texts, work / "enc-ray1", 32, 2)
        overhead = (local / remote - 1) * 100
        print(f"encoder int8 local: {local:7.1f} docs/s; Ray 1 replica ({args.threads} CPUs): {remote:7.1f} docs/s "
              f"(replica ready in {startup:.1f} s)", flush=True)
    ray.shutdown()
    print(f"RESULT ray4_vs_local={rates['ray4'] / rates['local']:.2f}")
    print(f"RESULT ray2_vs_local={rates['ray2'] / rates['local']:.2f}")
    print(f"RESULT ray1_vs_local={rates['ray1'] / rates['local']:.2f}")
    if overhead is not None:
        print(f"RESULT ray_overhead_pct={overhead:.1f}")


if __name__ == "__main__":
    main()
