"""``distil package``: a wheel that installs and loads by name with spacy.load and distil.load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import distil_cli
from .test_cli_run import CONFIG


def test_package_builds_a_wheel_that_loads_by_name(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "packages"
    result = subprocess.run(
        [*distil_cli(), "package", str(config), "--output", str(out), "--name", "test_rules", "--version", "1.2.3",
         "--paths.org", "Google"],
        capture_output=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    wheel = Path(result.stdout.decode().strip().splitlines()[-1])
    assert wheel.name.startswith("en_test_rules-1.2.3-") and wheel.suffix == ".whl"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = (
        "import spacy, distil\n"
        "nlp = spacy.load('en_test_rules')\n"
        "assert [e.text for e in nlp('Apple and Google').ents] == ['Google'], nlp('Apple and Google').ents\n"
        "assert distil.load('en_test_rules').meta['version'] == '1.2.3'\n"
        "assert any(r.startswith('distil>=') for r in nlp.meta['requirements'])\n"
        "print('ok')\n"
    )
    env_path = f"{target}"
    check = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120,
                           env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert check.returncode == 0, check.stderr.decode()
    assert check.stdout.decode().strip() == "ok"


def test_package_rejects_bad_name(tmp_path: Path) -> None:
    config = tmp_path / "ner.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    result = subprocess.run([*distil_cli(), "package", str(config), "--output", str(tmp_path), "--name", "bad-name"],
                            capture_output=True, timeout=120)
    assert result.returncode == 1 and b"must be a Python identifier" in result.stderr
