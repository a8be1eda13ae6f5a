"""Helpers for the LLM backend tests: pipeline configs with distil's LLM tasks and a model block."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from spacy.language import Language

import distil

from .backends import SCHEMA_BLOCKS
from .fakeserver import FakeOpenAIServer, distil_responder

TASK_NAMES = {"ner": "distil.NER.v1", "textcat": "distil.TextCat.v1", "rel": "distil.REL.v1"}


def llm_config(task: str, model_block: str, task_extra: str = "", schema_block: Optional[str] = None) -> str:
    """A config with one ``llm`` component named ``task`` using the contract schema and ``model_block``.

    ``model_block`` holds the lines of ``[components.<task>.model]`` (without
    the header); ``task_extra`` extra lines of the task block.
    """
    return (
        f'[nlp]\nlang = "en"\npipeline = ["{task}"]\n\n[schemas]\n{schema_block or SCHEMA_BLOCKS[task]}\n'
        f'[components]\n\n[components.{task}]\nfactory = "llm"\n\n'
        f'[components.{task}.task]\n@llm_tasks = "{TASK_NAMES[task]}"\nschema = ${{schemas.{task}}}\n{task_extra}\n'
        f"[components.{task}.model]\n{model_block}\n"
    )


def openai_block(base_url: str, extra: str = "") -> str:
    """The model block of ``distil.OpenAI.v1`` against ``base_url``, fast retries for tests.

    Lines in ``extra`` (``key = value``) replace the defaults of the same key.
    """
    settings = {"model": '"test-model"', "base_url": f'"{base_url}"', "backoff": "0.01", "backoff_max": "0.2", "timeout": "5"}
    for line in extra.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return '@llm_models = "distil.OpenAI.v1"\n' + "".join(f"{k} = {v}\n" for k, v in settings.items())


def load_config_text(text: str, path: Path) -> Language:
    """Write a config and load it through ``distil.load``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return distil.load(path)


_server: Optional[FakeOpenAIServer] = None
_lock = threading.Lock()


def shared_server() -> FakeOpenAIServer:
    """One fake server answering like an LLM reading distil prompts, alive for the test session."""
    global _server
    with _lock:
        if _server is None:
            _server = FakeOpenAIServer(distil_responder).__enter__()
        return _server


def build_llm(task: str, tmp_path: Path) -> Language:
    """The LLM backend for the contract suite: distil's task + ``distil.OpenAI.v1`` over real HTTP.

    The server is the deterministic fake on 127.0.0.1 (the embedded model is
    exercised by ``test_llm_embedded.py``; here the contract is the Doc shape).
    """
    config = llm_config(task, openai_block(shared_server().base_url))
    return load_config_text(config, tmp_path / f"{task}_llm.cfg")
