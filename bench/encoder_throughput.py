"""Encoder throughput: Hugging Face torch fp32 vs distil's ONNX fp32, int8 and static int8 vs spaCy's CNN, side by side.

The same fine-tuned model over the same documents on the same number of
threads, words per second for each and the ratios, measured in one run (the
median of ``--repeats`` timed passes per system, after a warm-up; every
system is loaded first and the passes are interleaved round by round, so a
slow stretch of a shared machine falls on all of them). Also the
resident memory of a process that loads only the int8 pipeline with torch
and transformers made unimportable (a serving box without the train extra).

    python bench/encoder_throughput.py --task ner [--model DIR] [--data ../shared/data] [--n 2000] [--threads 2]
    python bench/encoder_throughput.py --task textcat ...
    python bench/encoder_throughput.py --task rel ...

Documents: the test split (for NER, the WNUT-17 test tweets: realistic,
varied lengths), the first ``--n``.

Baselines: for ner, ``transformers.pipeline("token-classification",
aggregation_strategy="simple")`` on the torch checkpoint of the model
directory, and spaCy's CNN ``ner`` (``configs/spacy_students/ner.cfg``, the
efficiency config) trained inside the bench with ``spacy train`` on the same
WNUT-17 train/dev data on the config's own schedule (at most 20,000 steps,
stopping after 1,600 without dev improvement; ``--spacy-steps N`` caps it, for
smoke runs) or ``--spacy-student DIR``, an already trained pipeline. The textcat (mean pooling) and rel (entity
markers) heads are not Hugging Face pipeline architectures, so their baseline
is the same torch model called in batches of 32 on the Hugging Face fast
tokenizer's output (tokenization included). With no --model, a small model is
trained first (``--train-n`` sentences, ``--epochs`` epochs: a speed benchmark
needs the architecture, not the accuracy; ``--layers K`` trains a K-layer
student). A ``--model`` without static int8 (trained before calibration
inputs were saved) is copied to the scratch folder and calibrated on the
training split.

For NER each system's entity F on the same test documents is printed (from
the timed outputs), and ``--levers`` adds one int8 row per speed setting
(bucketing off, each graph optimization level, memory pattern off, spinning,
inter-op threads, smaller and larger batches; the rest at their defaults) to
measure them one by one. ``--preset NAME=DIR`` (repeatable) times another
student of the same task side by side at int8 (e.g. one trained with
``distil train --layers 3``) and prints its F.

Ends with ``RESULT int8_vs_hf_pipeline=``, and for NER ``RESULT
int8_static_vs_spacy_cnn=``, ``RESULT int8_static_f1_drop=``, ``RESULT
int8_vs_spacy_cnn=`` (int8 words/s over the CNN's) and ``RESULT
int8_f1_drop=`` (fp32 F minus int8 F, in points, same documents), plus
``RESULT preset_NAME_vs_spacy_cnn=`` and ``RESULT preset_NAME_f1=`` per
``--preset``. A smoke run
that finishes in about a minute:

    python bench/encoder_throughput.py --task ner --n 60 --train-n 40 --dev-n 20 --spacy-steps 20 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
DISTIL = [sys.executable, "-m", "distil.pipeline.cli"] if not (Path(sys.executable).parent / "distil").exists() else [
    str(Path(sys.executable).parent / "distil")
]
CONFIGS = {"ner": "ner_encoder.cfg", "textcat": "textcat_encoder.cfg", "rel": "rel_encoder.cfg"}


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def corpora(task: str, data: Path, work: Path) -> tuple[Path, Path, Path]:
    """(train, dev, eval) .spacy files for the task, converted from the public datasets."""
    if task == "ner":
        src = [(data / "wnut17" / "wnut17train.conll", "train"), (data / "wnut17" / "emerging.dev.conll", "dev"),
               (data / "wnut17" / "emerging.test.annotated", "test")]
        fmt = ["--format", "conll"]
    elif task == "textcat":
        src = [(data / "banking77" / "train.csv", "train"), (data / "banking77" / "test.csv", "test")]
        fmt = ["--format", "csv", "--labels", str(data / "banking77" / "categories.json")]
    else:
        src = [(data / "semeval2010_task8" / "TRAIN_FILE.TXT", "train"),
               (data / "semeval2010_task8" / "TEST_FILE_FULL.TXT", "test")]
        fmt = ["--format", "semeval"]
    out = {}
    for path, name in src:
        target = work / f"{task}_{name}.spacy"
        if not target.exists():
            run([*DISTIL, "convert", str(path), str(target), *fmt])
        out[name] = target
    return out["train"], out.get("dev", out["test"]), out["test"]


def small_model(task: str, train: Path, dev: Path, work: Path, args: argparse.Namespace) -> Path:
    """Train a small model quickly (speed needs the architecture, not the accuracy)."""
    import spacy

    from distil.corpus import read_docs, write_docs

    nlp = spacy.blank("en")
    small_train = work / f"{task}_small_train.spacy"
    small_dev = work / f"{task}_small_dev.spacy"
    write_docs(list(read_docs(train, nlp))[: args.train_n], small_train)
    write_docs(list(read_docs(dev, nlp))[: args.dev_n], small_dev)
    model = work / f"{task}_model"
    extra = ["--layers", str(args.layers)] if args.layers else []
    if args.base_model:
        extra += ["--base-model", str(args.base_model)]
    run([*DISTIL, "train", task, str(small_train), str(small_dev), "--output", str(model), "--epochs", str(args.epochs),
         "--max-length", "128", "--lr", "1e-4", "--threads", str(args.threads),
         "--schema", str(REPO / "configs" / CONFIGS[task]), *extra])
    return model


def with_static_int8(model: Path, train: Path, work: Path) -> Path:
    """``model``, or a copy of it calibrated for static int8 on ``train`` if it has no static int8 graph."""
    from distil.components.encoder.manifest import ONNX_FILES

    if (model / ONNX_FILES["int8_static"]).exists():
        return model
    copy = work / f"{model.name}_calibrated"
    shutil.copytree(model, copy)
    subprocess.run([sys.executable, "-m", "distil.training.export", str(copy), "--calibrate", str(train)], check=True)
    return copy


def spacy_cnn(train: Path, dev: Path, work: Path, steps: Optional[int]) -> Path:
    """spaCy's CNN ner (efficiency config) trained on the same data with ``spacy train``; its best-on-dev pipeline.

    ``steps`` None keeps the config's schedule (spaCy's defaults: up to 20,000
    steps, patience 1,600): a CNN stopped early would make the student's F
    look better than it is.
    """
    output = work / "spacy_ner"
    schedule = [] if steps is None else ["--training.max_steps", str(steps),
                                         "--training.eval_frequency", str(max(1, min(200, steps // 2)))]
    subprocess.run(
        [sys.executable, "-m", "spacy", "train", str(REPO / "configs" / "spacy_students" / "ner.cfg"),
         "--paths.train", str(train), "--paths.dev", str(dev), "--output", str(output), *schedule],
        check=True, stdout=subprocess.DEVNULL,
    )
    return output / "model-best"


def words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def round_robin(systems: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The median seconds of ``repeats`` passes of every system, and each system's last output.

    Passes are interleaved: each round runs every system once, in an order
    rotated by one per round. Timed back to back, one system's passes all
    land in the same stretch of a shared machine's load, and on this 2-core
    VM that moved single rows by up to 25% between runs.
    """
    names = list(systems)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, Any] = {}
    for round_index in range(max(1, repeats)):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            outputs[name] = systems[name]()
            seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}, outputs


def distil_pass(
    task: str, model: Path, docs: list[Any], precision: str, threads: int, repeats: int,
    settings: Optional[dict[str, Any]] = None,
) -> Callable[[], Any]:
    """A loaded, warmed-up distil pipeline's pass over ``docs`` (``nlp.pipe``, spaCy tokenization included)."""
    import distil
    from distil.training.examples import blank_copy

    overrides = {"paths.model": str(model), f"components.{task}.precision": precision,
                 f"components.{task}.threads": threads, f"components.{task}.batch_size": 32}
    overrides.update({f"components.{task}.{key}": value for key, value in (settings or {}).items()})
    nlp = distil.load(REPO / "configs" / CONFIGS[task], overrides)
    if task == "rel":
        # Fresh copies per pass, made before the clock starts (the component writes into the Docs it gets).
        passes = iter([[blank_copy(doc, "rel") for doc in docs] for _ in range(max(1, repeats))])
        nlp(blank_copy(docs[0], "rel"))
        return lambda: list(nlp.pipe(next(passes), batch_size=256))
    texts = [doc.text for doc in docs]
    list(nlp.pipe(texts[:32]))
    return lambda: list(nlp.pipe(texts, batch_size=256))


def time_hf(task: str, model: Path, docs: list[Any], threads: int) -> float:
    import torch
    from transformers import AutoTokenizer, pipeline
    from transformers.utils import logging

    from distil.components.encoder.manifest import Manifest
    from distil.components.encoder.markers import Mention, mark_pair
    from distil.training.modeling import load_model

    logging.set_verbosity_error()
    torch.set_num_threads(threads)
    checkpoint = model / "torch"
    texts = [doc.text for doc in docs]
    if task == "ner":
        tagger = pipeline("token-classification", model=str(checkpoint), tokenizer=str(checkpoint),
                          aggregation_strategy="simple", device=-1)
        tagger(texts[:8], batch_size=32)
        started = time.perf_counter()
        tagger(texts, batch_size=32)
        return time.perf_counter() - started
    manifest = Manifest.from_disk(model)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    net = load_model(task, checkpoint).eval()
    started = time.perf_counter()
    with torch.inference_mode():
        if task == "textcat":
            for i in range(0, len(texts), 32):
                enc = tokenizer(texts[i : i + 32], padding=True, truncation=True, max_length=manifest.max_length,
                                return_tensors="pt")
                net(enc["input_ids"], enc["attention_mask"]).softmax(-1)
        else:
            marked, heads, tails = [], [], []
            for doc in docs:
                ents = list(doc.ents)
                for h, t in ((0, 1), (1, 0)):
                    text, hc, tc = mark_pair(doc.text, *(Mention(e.start_char, e.end_char, e.label_)
                                                         for e in (ents[h], ents[t])))
                    marked.append(text)
                    heads.append(hc)
                    tails.append(tc)
            for i in range(0, len(marked), 32):
                enc = tokenizer(marked[i : i + 32], padding=True, truncation=True, max_length=manifest.max_length,
                                return_tensors="pt")
                head_ids = torch.tensor([enc.char_to_token(k, c) or 0 for k, c in enumerate(heads[i : i + 32])])
                tail_ids = torch.tensor([enc.char_to_token(k, c) or 0 for k, c in enumerate(tails[i : i + 32])])
                net(enc["input_ids"], enc["attention_mask"], head_ids, tail_ids).softmax(-1)
    return time.perf_counter() - started


def int8_memory(task: str, model: Path, texts: list[str], threads: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that loads only the int8 pipeline, with torch/transformers unimportable."""
    texts_file = Path(tempfile.mkdtemp()) / "texts.json"
    texts_file.write_text(json.dumps(texts[:200]), encoding="utf-8")
    script = f"""
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import distil
nlp = distil.load({json.dumps(str(REPO / 'configs' / CONFIGS[task]))},
                  {{"paths.model": {json.dumps(str(model))}, "components.{task}.threads": {threads}}})
texts = json.load(open({json.dumps(str(texts_file))}, encoding="utf-8"))
if "{task}" != "rel":
    list(nlp.pipe(texts))
loaded = sorted({{m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("torch", "transformers")}})
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork/exec (the parent here holds torch).
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({{"max_rss_mb": peak, "torch_or_transformers": loaded}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the int8-only process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def spacy_pass(student: Path, texts: list[str]) -> Callable[[], Any]:
    """A loaded, warmed-up spaCy pipeline's pass over ``texts``."""
    import spacy

    nlp = spacy.load(student)
    list(nlp.pipe(texts[:32]))
    return lambda: list(nlp.pipe(texts, batch_size=256))


def entity_f(predicted: list[Any], gold: list[Any]) -> float:
    """Entity F (points) of predicted docs against the gold docs of the same texts: ``distil evaluate``'s scorer."""
    from distil.scoring import score_task

    return 100.0 * float(score_task("ner", zip(predicted, gold, strict=True), None)["ents_f"] or 0.0)  # type: ignore[arg-type]


# One int8 row per speed setting for --levers: each changes one setting from the defaults.
LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("bucket_window=0", {"bucket_window": 0}),
    ("graph_optimization=basic", {"graph_optimization": "basic"}),
    ("graph_optimization=extended", {"graph_optimization": "extended"}),
    ("mem_pattern=false", {"mem_pattern": False}),
    ("spin=true", {"spin": True}),
    ("inter_op_threads=2", {"inter_op_threads": 2}),
    ("batch_size=8", {"batch_size": 8}),
    ("batch_size=128", {"batch_size": 128}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["ner", "textcat", "rel"], default="ner")
    parser.add_argument("--model", type=Path, help="Model directory from distil train (default: train a small one).")
    parser.add_argument("--spacy-student", type=Path, help="A spaCy pipeline trained with spacy train, to compare.")
    parser.add_argument("--spacy-steps", type=int, default=None,
                        help="ner: cap spaCy's CNN training inside the bench at this many steps (default: the config's "
                             "schedule, trained until dev stops improving; 0: no CNN unless --spacy-student).")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=2000, help="Number of test documents (WNUT-17 test has 1,287).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5,
                        help="Timed passes per system, interleaved across systems (the median is reported).")
    parser.add_argument("--levers", action="store_true", help="Add one int8 row per speed setting.")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME=DIR",
                        help="Another student of the task (e.g. trained with --layers 3), timed at int8 side by side.")
    parser.add_argument("--train-n", type=int, default=400, help="Training sentences of the small model (no --model).")
    parser.add_argument("--dev-n", type=int, default=100, help="Dev sentences of the small model (no --model).")
    parser.add_argument("--epochs", type=int, default=1, help="Epochs of the small model (no --model).")
    parser.add_argument("--layers", type=int, help="Transformer layers of the small model (no --model; default: all).")
    parser.add_argument("--base-model", type=Path, help="Base model of the small model (default: MiniLM).")
    args = parser.parse_args()
    presets: dict[str, Path] = {}
    for item in args.preset:
        name, sep, directory = item.partition("=")
        if not sep or not name or not (Path(directory) / "manifest.json").exists():
            parser.error(f"--preset takes NAME=DIR with a model directory from distil train, got {item!r}")
        presets[name] = Path(directory)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import spacy

    from distil.corpus import read_docs

    work = Path(tempfile.mkdtemp(prefix=f"distil-bench-{args.task}-"))
    train, dev, test = corpora(args.task, args.data, work)
    model = args.model or small_model(args.task, train, dev, work, args)
    model = with_static_int8(model, train, work)
    nlp = spacy.blank("en")
    gold = [doc for doc in read_docs(test, nlp) if doc.text.strip()][: args.n]
    texts = [doc.text for doc in gold]
    n_words = words(texts)
    student = args.spacy_student
    if student is None and args.task == "ner" and args.spacy_steps != 0:
        student = spacy_cnn(train, dev, work, args.spacy_steps)
    rows: dict[str, float] = {"hf_torch_fp32": time_hf(args.task, model, gold, args.threads)}
    systems: dict[str, Callable[[], Any]] = {}
    for name, precision in (("distil_onnx_fp32", "fp32"), ("distil_onnx_int8", "int8"),
                            ("distil_onnx_int8_static", "int8_static")):
        systems[name] = distil_pass(args.task, model, gold, precision, args.threads, args.repeats)
    if args.levers:
        for label, settings in LEVERS:
            systems[f"int8 {label}"] = distil_pass(args.task, model, gold, "int8", args.threads, args.repeats, settings)
    for name, directory in presets.items():
        systems[f"preset {name} int8"] = distil_pass(args.task, directory, gold, "int8", args.threads, args.repeats)
    if student is not None:
        systems["spacy_cnn"] = spacy_pass(student, texts)
    timings, outputs = round_robin(systems, args.repeats)
    rows.update(timings)
    memory = int8_memory(args.task, model, texts, args.threads)
    baseline = rows["hf_torch_fp32"]
    scores = {name: entity_f(out, gold) for name, out in outputs.items()} if args.task == "ner" else {}
    print(f"task {args.task}, model {model}, {len(texts)} test documents, {n_words} words, {args.threads} threads, "
          f"median of {args.repeats} interleaved passes (HF: one pass)")
    print(f"{'system':<36}{'seconds':>10}{'words/s':>12}{'vs HF':>8}{'ents F':>9}")
    for name, seconds in rows.items():
        score = f"{scores[name]:>9.2f}" if name in scores else f"{'':>9}"
        print(f"{name:<36}{seconds:>10.2f}{n_words / seconds:>12.0f}{baseline / seconds:>7.2f}x{score}")
    if args.task == "ner":
        for name in ("distil_onnx_int8", "distil_onnx_int8_static"):
            same = sum(
                [(e.start_char, e.end_char, e.label_) for e in a.ents] == [(e.start_char, e.end_char, e.label_) for e in b.ents]
                for a, b in zip(outputs["distil_onnx_fp32"], outputs[name], strict=True)
            )
            print(f"{name}: entities identical to fp32 on {same}/{len(texts)} documents")
    print(f"int8-only process: peak RSS {memory['max_rss_mb']:.0f} MB, torch/transformers imported: "
          f"{memory['torch_or_transformers'] or 'none'}")
    print(f"RESULT int8_vs_hf_pipeline={baseline / rows['distil_onnx_int8']:.2f}")
    if args.task == "ner":
        if "spacy_cnn" in rows:
            print(f"RESULT int8_static_vs_spacy_cnn={rows['spacy_cnn'] / rows['distil_onnx_int8_static']:.2f}")
        print(f"RESULT int8_static_f1_drop={scores['distil_onnx_fp32'] - scores['distil_onnx_int8_static']:.2f}")
        if "spacy_cnn" in rows:
            print(f"RESULT int8_vs_spacy_cnn={rows['spacy_cnn'] / rows['distil_onnx_int8']:.2f}")
        print(f"RESULT int8_f1_drop={scores['distil_onnx_fp32'] - scores['distil_onnx_int8']:.2f}")
        print(f"RESULT int8_f1={scores['distil_onnx_int8']:.2f}")
        if "spacy_cnn" in rows:
            print(f"RESULT spacy_cnn_f1={scores['spacy_cnn']:.2f}")
    for name in presets:
        if "spacy_cnn" in rows:
            print(f"RESULT preset_{name}_vs_spacy_cnn={rows['spacy_cnn'] / rows[f'preset {name} int8']:.2f}")
        if args.task == "ner":
            print(f"RESULT preset_{name}_f1={scores[f'preset {name} int8']:.2f}")


if __name__ == "__main__":
    main()
