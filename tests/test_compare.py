"""``distil compare``: table, JSON and a real PNG from several pipelines on the same gold data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import matplotlib.image
import spacy

from distil.annotations import EntityPrediction, write_entities
from distil.corpus import write_docs

from .conftest import distil_cli

CONFIG = """
[nlp]
lang = "en"
pipeline = ["ner"]

[schemas]

[schemas.ner]
@misc = "distil.NERSchema.v1"
labels = ["ORG", "PERSON"]

[components]

[components.ner]
factory = "distil_ner_rules"
schema = ${schemas.ner}
patterns = PATTERNS
"""


def test_compare_writes_table_json_and_png(tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    golds = []
    for text, ents in [
        ("Apple hired Tim Cook.", [(0, 5, "ORG"), (12, 20, "PERSON")]),
        ("Google and Apple merged.", [(0, 6, "ORG"), (11, 16, "ORG")]),
    ]:
        doc = nlp(text)
        write_entities(doc, [EntityPrediction(s, e, label) for s, e, label in ents])
        golds.append(doc)
    gold = tmp_path / "gold.spacy"
    write_docs(golds, gold)
    good = tmp_path / "good.cfg"
    good.write_text(CONFIG.replace("PATTERNS", json.dumps([
        {"label": "ORG", "pattern": "Apple"}, {"label": "ORG", "pattern": "Google"},
        {"label": "PERSON", "pattern": "Tim Cook"}])))
    weak = tmp_path / "weak.cfg"
    weak.write_text(CONFIG.replace("PATTERNS", json.dumps([{"label": "ORG", "pattern": "Apple"}])))
    out = tmp_path / "cmp"
    result = subprocess.run(
        [*distil_cli(), "compare", "--gold", str(gold), "--output", str(out), f"best={good}", str(weak)],
        capture_output=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr.decode()
    table = result.stdout.decode()
    assert "| best |" in table and "| weak |" in table
    assert table.index("| best |") < table.index("| weak |"), "sorted by score, best first"
    data = json.loads((out / "compare.json").read_text())
    scores = {row["pipeline"]: row["score"] for row in data["rows"]}
    assert scores["best"] == 1.0
    # weak finds 2 of 4 gold entities with no false positive: P 1.0, R 0.5.
    assert abs(scores["weak"] - 2 * 0.5 / 1.5) < 1e-9
    assert all(row["docs_per_second"] > 0 and row["p95_latency_ms"] > 0 for row in data["rows"])
    assert all(row["model_mb"] is None for row in data["rows"]), "rules run no weight files"
    assert (out / "compare.md").read_text().startswith("### ner (ents_f)")
    image = matplotlib.image.imread(out / "compare.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def test_compare_needs_a_config(tmp_path: Path) -> None:
    result = subprocess.run(
        [*distil_cli(), "compare", "--gold", str(tmp_path / "g.spacy"), "--output", str(tmp_path)],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 1 and b"at least one CONFIG" in result.stderr
