"""The backend registry of the contract suite (``tests/test_contract.py``).

Each backend registers a builder in :data:`BUILDERS`: ``builder(task, tmp_path)``
returns a ``Language`` whose component for ``task`` (``"ner"``, ``"textcat"``
or ``"rel"``) uses that backend and the shared test schema below
(:data:`SCHEMA_BLOCKS`), so that the contract tests can compare every backend
on the same :data:`EXAMPLES`. A builder calls ``pytest.skip`` when its backend
cannot run here (a missing optional extra), never returns a half pipeline.

For ``rel`` the entities come with the input: :func:`input_doc` turns an
example into a Doc that already has its entities, and the pipeline is applied
to that Doc (``nlp(doc)``), as ``distil evaluate`` does with gold entities.

To add a backend: write ``build_<backend>(task, tmp_path)`` here (or import it
from a helper module) and add it to ``BUILDERS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

import distil
from distil.records import from_record

TASKS = ("ner", "textcat", "rel")

# One schema per task, shared by every backend's builder: a small WNUT-17-like
# entity set, an exclusive BANKING77-like category set, and relations between
# those entity labels.
SCHEMA_BLOCKS: dict[str, str] = {
    "ner": """
[schemas.ner]
@misc = "distil.NERSchema.v1"

[schemas.ner.labels]
person = "Names of people."
location = "Names of places."
corporation = "Names of companies."
""",
    "textcat": """
[schemas.textcat]
@misc = "distil.TextCatSchema.v1"
labels = ["lost_or_stolen_card", "exchange_rate", "top_up"]
exclusive = true
threshold = 0.5
""",
    "rel": """
[schemas.rel]
@misc = "distil.RELSchema.v1"

[schemas.rel.labels]

[schemas.rel.labels.works_for]
description = "A person works for a company."
head = ["person"]
tail = ["corporation"]

[schemas.rel.labels.located_in]
description = "A person or company is in a place."
head = ["person", "corporation"]
tail = ["location"]
""",
}

SCHEMA_LABELS: dict[str, tuple[str, ...]] = {
    "ner": ("person", "location", "corporation"),
    "textcat": ("lost_or_stolen_card", "exchange_rate", "top_up"),
    "rel": ("works_for", "located_in"),
}


def _ent(text: str, mention: str, label: str) -> dict[str, Any]:
    start = text.index(mention)
    return {"start": start, "end": start + len(mention), "label": label, "text": mention}


_REL_TEXTS = [
    ("Apple hired Tim Cook in Cupertino.", [("Apple", "corporation"), ("Tim Cook", "person"), ("Cupertino", "location")]),
    ("Sundar Pichai is the CEO of Google.", [("Sundar Pichai", "person"), ("Google", "corporation")]),
    ("Nothing links Paris and Berlin here.", [("Paris", "location"), ("Berlin", "location")]),
]

# The inputs every backend annotates: records with text (and, for rel, the
# given entities; never the expected relations or categories).
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "ner": [
        {"text": "Apple hired Tim Cook in Cupertino."},
        {"text": "Sundar Pichai works for Google in Mountain View."},
        {"text": "nothing to see here"},
        {"text": ""},
    ],
    "textcat": [
        {"text": "I lost my card yesterday, please block it."},
        {"text": "What is the exchange rate for euros?"},
        {"text": "How do I top up my account?"},
        {"text": "hello"},
    ],
    "rel": [
        {"text": text, "entities": [_ent(text, mention, label) for mention, label in ents]}
        for text, ents in _REL_TEXTS
    ],
}


def input_doc(nlp: Language, task: str, example: dict[str, Any]) -> Doc:
    """The Doc a pipeline for ``task`` is applied to: tokenised text, plus the given entities for ``rel``."""
    if task == "rel":
        return from_record({"text": example["text"], "entities": example.get("entities", [])}, nlp)
    return nlp.make_doc(example["text"])


def annotate(nlp: Language, task: str, examples: list[dict[str, Any]] | None = None) -> list[Doc]:
    """Run ``nlp`` over the task's examples (or ``examples``), entities given for ``rel``."""
    return [nlp(input_doc(nlp, task, example)) for example in (examples or EXAMPLES[task])]


# --- rules -------------------------------------------------------------------------

RULE_FILES: dict[str, list[dict[str, Any]]] = {
    "ner": [
        {"label": "corporation", "pattern": "Apple"},
        {"label": "corporation", "pattern": "Google"},
        {"label": "person", "pattern": "Tim Cook"},
        {"label": "person", "pattern": [{"IS_TITLE": True, "ORTH": "Sundar"}, {"ORTH": "Pichai"}]},
        {"label": "location", "pattern": "Cupertino"},
        {"label": "location", "pattern": "Mountain View"},
    ],
    "textcat": [
        {"label": "lost_or_stolen_card", "keyword": ["lost", "stolen"], "weight": 2.0},
        {"label": "lost_or_stolen_card", "phrase": "block it"},
        {"label": "exchange_rate", "phrase": "exchange rate", "weight": 2.0},
        {"label": "exchange_rate", "regex": r"\beuros?\b", "weight": 0.5},
        {"label": "top_up", "pattern": [{"LOWER": "top"}, {"LOWER": "up"}]},
    ],
    "rel": [
        {"label": "works_for", "triggers": ["hired"], "direction": "tail_first"},
        {"label": "works_for", "triggers": ["ceo of", "works for"], "score": 0.8},
        {"label": "located_in", "triggers": ["in"], "whole_gap": True, "score": 0.7},
    ],
}

_RULE_COMPONENTS = {
    "ner": ('distil_ner_rules', "patterns_path"),
    "textcat": ('distil_textcat_rules', "rules_path"),
    "rel": ('distil_rel_rules', "rules_path"),
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL (one object a line) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def rules_config(task: str, rules_file: Path) -> str:
    """A pipeline config with one rule component named after ``task``, reading ``rules_file``."""
    factory, arg = _RULE_COMPONENTS[task]
    return (
        f'[paths]\nrules = "{rules_file.as_posix()}"\n\n[nlp]\nlang = "en"\npipeline = ["{task}"]\n\n[schemas]\n'
        f"{SCHEMA_BLOCKS[task]}\n[components]\n\n[components.{task}]\nfactory = \"{factory}\"\n"
        f"schema = ${{schemas.{task}}}\n{arg} = ${{paths.rules}}\n"
    )


def build_rules(task: str, tmp_path: Path) -> Language:
    """The rules backend for ``task``: rules in a JSONL file under ``tmp_path``, loaded through a config."""
    rules_file = write_jsonl(tmp_path / "rules" / f"{task}.jsonl", RULE_FILES[task])
    config = tmp_path / f"{task}_rules.cfg"
    config.write_text(rules_config(task, rules_file), encoding="utf-8")
    return distil.load(config)


Builder = Callable[[str, Path], Language]

BUILDERS: dict[str, Builder] = {
    "rules": build_rules,
}


def _build_llm(task: str, tmp_path: Path) -> Language:
    from .llm_support import build_llm

    return build_llm(task, tmp_path)


BUILDERS["llm"] = _build_llm


def _build_encoder(task: str, tmp_path: Path) -> Language:
    from .encoder_support import build_encoder

    return build_encoder(task, tmp_path)  # type: ignore[no-any-return]


BUILDERS["encoder"] = _build_encoder
