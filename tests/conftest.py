"""Shared fixtures: a blank English pipeline and paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

REPO = Path(__file__).resolve().parent.parent
# The tests never touch the network: make any accidental hub access fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def nlp() -> Language:
    return spacy.blank("en")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def distil_cli() -> list[str]:
    """The command that runs the distil CLI in a subprocess (the installed console script)."""
    script = Path(sys.executable).parent / "distil"
    return [str(script)] if script.exists() else [sys.executable, "-m", "distil"]
