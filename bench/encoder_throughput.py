"""Encoder throughput: Hugging Face torch fp32 vs distil's ONNX fp32 vs int8 (vs spaCy's CNN student), side by side.

The same fine-tuned model over the same sentences on the same number of
threads, words per second for each and the ratios, measured in one run. Also
the resident memory of a process that loads only the int8 pipeline with torch
and transformers made unimportable (a serving box without the train extra).

    python bench/encoder_throughput.py --task ner [--model DIR] [--data ../shared/data] [--n 2000] [--threads 2]
    python bench/encoder_throughput.py --task textcat ...
    python bench/encoder_throughput.py --task rel ...

Baselines: for ner, ``transformers.pipeline("token-classification",
aggregation_strategy="simple")`` on the torch checkpoint of the model
directory. The textcat (mean pooling) and rel (entity markers) heads are not
Hugging Face pipeline architectures, so their baseline is the same torch model
called in batches of 32 on the Hugging Face fast tokenizer's output
(tokenization included). With no --model, a small model is trained first
(a few hundred sentences, one epoch: a speed benchmark needs the architecture,
not the accuracy). Ends with ``RESULT int8_vs_hf_pipeline=<ratio>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def small_model(task: str, train: Path, dev: Path, work: Path, threads: int) -> Path:
    """Train a small model quickly (speed needs the architecture, not the accuracy)."""
    import spacy

    from distil.corpus import read_docs, write_docs

    nlp = spacy.blank("en")
    small_train = work / f"{task}_small_train.spacy"
    small_dev = work / f"{task}_small_dev.spacy"
    write_docs(list(read_docs(train, nlp))[:400], small_train)
    write_docs(list(read_docs(dev, nlp))[:100], small_dev)
    model = work / f"{task}_model"
    run([*DISTIL, "train", task, str(small_train), str(small_dev), "--output", str(model), "--epochs", "1",
         "--max-length", "128", "--lr", "1e-4", "--threads", str(threads),
         "--schema", str(REPO / "configs" / CONFIGS[task])])
    return model


def words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def time_distil(task: str, model: Path, docs: list[Any], precision: str, threads: int) -> tuple[float, Any]:
    import distil
    from distil.training.examples import blank_copy

    nlp = distil.load(REPO / "configs" / CONFIGS[task],
                      {"paths.model": str(model), f"components.{task}.precision": precision,
                       f"components.{task}.threads": threads, f"components.{task}.batch_size": 32})
    if task == "rel":
        inputs = [blank_copy(doc, "rel") for doc in docs]
        nlp(inputs[0])
        started = time.perf_counter()
        out = list(nlp.pipe(inputs, batch_size=256))
    else:
        texts = [doc.text for doc in docs]
        list(nlp.pipe(texts[:32]))
        started = time.perf_counter()
        out = list(nlp.pipe(texts, batch_size=256))
    return time.perf_counter() - started, out


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


def time_spacy(student: Path, texts: list[str], threads: int) -> float:
    import spacy

    nlp = spacy.load(student)
    list(nlp.pipe(texts[:32]))
    started = time.perf_counter()
    list(nlp.pipe(texts, batch_size=256))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["ner", "textcat", "rel"], default="ner")
    parser.add_argument("--model", type=Path, help="Model directory from distil train (default: train a small one).")
    parser.add_argument("--spacy-student", type=Path, help="A spaCy pipeline trained with spacy train, to compare.")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--n", type=int, default=2000, help="Number of sentences.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import spacy

    from distil.corpus import read_docs

    work = Path(tempfile.mkdtemp(prefix=f"distil-bench-{args.task}-"))
    train, dev, test = corpora(args.task, args.data, work)
    model = args.model or small_model(args.task, train, dev, work, args.threads)
    nlp = spacy.blank("en")
    docs = list(read_docs(dev, nlp)) + list(read_docs(test, nlp))
    docs = [doc for doc in docs if doc.text.strip()][: args.n]
    texts = [doc.text for doc in docs]
    n_words = words(texts)
    rows: dict[str, float] = {}
    rows["hf_torch_fp32"] = time_hf(args.task, model, docs, args.threads)
    rows["distil_onnx_fp32"], fp32_docs = time_distil(args.task, model, docs, "fp32", args.threads)
    rows["distil_onnx_int8"], int8_docs = time_distil(args.task, model, docs, "int8", args.threads)
    if args.spacy_student:
        rows["spacy_cnn_student"] = time_spacy(args.spacy_student, texts, args.threads)
    memory = int8_memory(args.task, model, texts, args.threads)
    baseline = rows["hf_torch_fp32"]
    print(f"task {args.task}, model {model}, {len(texts)} sentences, {n_words} words, {args.threads} threads")
    print(f"{'system':<22}{'seconds':>10}{'words/s':>12}{'vs HF':>8}")
    for name, seconds in rows.items():
        print(f"{name:<22}{seconds:>10.2f}{n_words / seconds:>12.0f}{baseline / seconds:>7.2f}x")
    if args.task == "ner":
        same = sum(
            [(e.start_char, e.end_char, e.label_) for e in a.ents] == [(e.start_char, e.end_char, e.label_) for e in b.ents]
            for a, b in zip(fp32_docs, int8_docs, strict=True)
        )
        print(f"int8 entities identical to fp32 on {same}/{len(texts)} sentences")
    print(f"int8-only process: peak RSS {memory['max_rss_mb']:.0f} MB, torch/transformers imported: "
          f"{memory['torch_or_transformers'] or 'none'}")
    print(f"RESULT int8_vs_hf_pipeline={baseline / rows['distil_onnx_int8']:.2f}")


if __name__ == "__main__":
    main()
