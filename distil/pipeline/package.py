"""Build an installable pipeline package (a wheel), as ``spacy package`` does, with distil as a requirement.

Production installs one wheel and calls ``spacy.load(name)`` or
``distil.load(name)``; the student models travel inside it because distil's
components copy their model files into the pipeline directory on ``to_disk``.
"""

from __future__ import annotations

from ..errors import DistilError
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from spacy.cli.package import package as spacy_package

from ..about import __version__
from .config import load_pipeline


class PackageError(DistilError, RuntimeError):
    """The package could not be built; the message says which step failed."""


def build_package(
    source: Path,
    output: Path,
    *,
    name: str,
    version: str = "0.0.1",
    overrides: Optional[dict[str, object]] = None,
    wheel: bool = True,
) -> Path:
    """Package a config or saved pipeline directory; returns the wheel (or the package directory).

    The pipeline is built and saved first (so a config with ``${paths.model}``
    overrides is frozen with its models), ``distil`` is added to the
    package's requirements, and the wheel is built without network access.
    """
    if not name.isidentifier():
        raise PackageError(f"package name {name!r} must be a Python identifier (letters, digits, underscores)")
    nlp = load_pipeline(source, overrides)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline_dir = Path(tmp) / "pipeline"
        nlp.meta["name"] = name
        nlp.meta["version"] = version
        requirements = [r for r in nlp.meta.get("requirements", []) if not r.startswith("distil")]
        nlp.meta["requirements"] = [*requirements, f"distil>={__version__}"]
        nlp.to_disk(pipeline_dir)
        meta = json.loads((pipeline_dir / "meta.json").read_text(encoding="utf-8"))
        meta["requirements"] = nlp.meta["requirements"]
        (pipeline_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            spacy_package(pipeline_dir, output, name=name, version=version, create_sdist=False, force=True, silent=True)
        except SystemExit as err:
            raise PackageError(f"spacy package failed for {source} (exit {err.code})") from err
    package_dir = output / f"{nlp.lang}_{name}-{version}"
    if not wheel:
        return package_dir
    dist = output / "dist"
    # No build isolation: the build needs only setuptools, already installed, and no network.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(package_dir)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise PackageError(f"building the wheel failed:\n{result.stderr[-2000:]}")
    wheels = sorted(dist.glob(f"{nlp.lang}_{name}-{version}-*.whl"))
    if not wheels:
        raise PackageError(f"no wheel found in {dist} after the build")
    shutil.rmtree(package_dir / "build", ignore_errors=True)
    return wheels[-1]
