"""The weasel projects' smoke workflows, end to end on the shared data with tiny sizes.

Each runs the real steps (convert, split, LLM teacher annotation, simulated
review, three student trainings, assembly, comparison) in a copy of the
project directory. They need ../shared/data (present in CI); without it they
are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly

from .conftest import REPO

DATA = Path(os.environ.get("DISTIL_DATA_DIR", REPO.parent / "shared" / "data"))
CONFIGS = REPO / "configs"
# Per project: the configs its smoke run points at (absolute: the run happens in a copy), and the rule file.
PROJECTS: dict[str, dict[str, str]] = {
    "textcat_banking77": {"teacher_config": "textcat_llm.cfg", "student_config": "textcat_encoder.cfg",
                          "rules_config": "textcat_rules.cfg", "rules_file": "rules/banking77_textcat.jsonl"},
    "ner_wnut17": {"teacher_config": "ner_llm.cfg", "student_config": "ner_encoder.cfg",
                   "rules_config": "ner_rules.cfg", "rules_file": "rules/wnut17_patterns.jsonl"},
    "rel_semeval": {"teacher_config": "rel_llm.cfg", "student_config": "rel_encoder.cfg",
                    "rules_config": "rel_rules.cfg", "rules_file": "rules/semeval_relations.jsonl"},
    # entities and relations end to end, no rules baseline
    "rel_fire": {"teacher_config": "fire_llm.cfg", "student_config": "fire_encoder.cfg"},
}


@pytest.mark.slow
@pytest.mark.projects
@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_smoke_workflow(project: str, tmp_path: Path) -> None:
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA} (set DISTIL_DATA_DIR)")
    work = tmp_path / project
    # Only the project as committed: a full run's outputs in a developer's checkout (git-ignored) must not leak in.
    project_dirs = srsly.read_yaml(REPO / "projects" / project / "project.yml")["directories"]
    outputs = shutil.ignore_patterns(*project_dirs, "project.lock")
    shutil.copytree(REPO / "projects" / project, work, ignore=outputs)
    overrides = {
        "data_dir": str(DATA),
        "size": "8",
        "dev_size": "8",
        "test_size": "6",
        "epochs": "1",
        "human_epochs": "1",
        "max_minutes": "2",
        "batch_size": "4",
        **{key: str(CONFIGS / name) for key, name in PROJECTS[project].items()},
    }
    cmd = [sys.executable, "-m", "weasel", "run", "smoke", str(work)]
    cmd += [arg for key, value in overrides.items() for arg in (f"--vars.{key}", value)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=work)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = (work / "annotations" / "teacher" / "records.jsonl").read_text().splitlines()
    assert len(records) == 8, "the teacher annotated every sampled training document"
    review = json.loads((work / "annotations" / "reviewed" / "review.json").read_text())
    assert review["replaced_by_gold"] == 2 and "simulated" in review["note"]
    rows = json.loads((work / "metrics" / "compare" / "compare.json").read_text())["rows"]
    names = {row["pipeline"] for row in rows}
    expected = {"teacher-llm", "student-teacher", "student-reviewed", "student-gold", "student-human-only"}
    assert expected | ({"rules"} if "rules_config" in PROJECTS[project] else set()) <= names
    assert all(row["docs_per_second"] > 0 for row in rows)
    if project == "rel_fire":  # entities and relations end to end: relations ranked by the strict figure
        assert {row["metric"] for row in rows if row["task"] == "rel"} == {"rel_strict_micro_f"}
        assert {row["task"] for row in rows} == {"ner", "rel"}
    assert (work / "metrics" / "compare" / "compare.png").stat().st_size > 1000
