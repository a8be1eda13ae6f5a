"""Build an installable pipeline package (a wheel), as ``spacy package`` does, with distil as a requirement.

Production installs one wheel and calls ``spacy.load(name)`` or
``distil.load(name)``; the student models travel inside it because distil's
components copy their model files into the pipeline directory on ``to_disk``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from packaging.version import InvalidVersion, Version
from spacy.cli.package import package as spacy_package
from spacy.language import Language

from ..about import __version__
from ..errors import DistilError
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
    check_version(version)
    nlp = load_pipeline(source, overrides)
    created = [] if output.exists() else [output]
    output.mkdir(parents=True, exist_ok=True)
    package_dir = output / f"{nlp.lang}_{name}-{version}"
    created += [] if package_dir.exists() else [package_dir]
    try:
        return _build(nlp, source, output, package_dir, name=name, version=version, wheel=wheel)
    except BaseException:
        # A failed build must not leave a half-written package behind for the next run to trip over.
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)
        raise


def check_version(version: str) -> None:
    """Raise :class:`PackageError` unless ``version`` is a PEP 440 version (``1.0``, ``0.2.1rc1``).

    Checked before anything is built: pip would otherwise refuse the version
    only at the very end, with a page of its own output.
    """
    try:
        normal = str(Version(version))
    except InvalidVersion:
        raise PackageError(
            f"--version {version!r} is not a valid package version (PEP 440); use numbers such as 1.0 or 0.2.1"
        ) from None
    if normal != version:  # pip would name the wheel by the normal form, and the package directory would differ
        raise PackageError(f"--version {version!r}: write it in its normal form, {normal!r}")


def _build(
    nlp: Language, source: Path, output: Path, package_dir: Path, *, name: str, version: str, wheel: bool
) -> Path:
    """Save ``nlp``, write the package with ``spacy package`` into ``package_dir``, and build its wheel."""
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
        last = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise PackageError(f"building the wheel of {package_dir} failed (pip wheel exit {result.returncode}):\n{last}")
    wheels = sorted(dist.glob(f"{nlp.lang}_{name}-{version}-*.whl"))
    if not wheels:
        raise PackageError(f"no wheel found in {dist} after the build")
    shutil.rmtree(package_dir / "build", ignore_errors=True)
    return wheels[-1]
