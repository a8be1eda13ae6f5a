"""The layering the design relies on: backends and training import the core alone, inference never imports torch.

These are rules of the tree (docs/concepts.md, "Layout"), checked on the
source: a backend that imports the application layer, or an inference module
that imports torch, fails here before it surprises a server without the
``train`` extra.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from distil.components.llm.models.llamacpp import LlamaCppSettings, make_llamacpp_model
from distil.components.llm.models.openai import OpenAISettings, make_openai_model

PACKAGE = Path(__file__).resolve().parent.parent / "distil"
TRAINING_LIBRARIES = {"torch", "transformers", "onnx"}


def imported_modules(path: Path) -> Iterator[str]:
    """The absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield module
            # `from . import x` imports the submodule x.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def modules_under(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules_under("components", "training"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_backends_and_training_import_the_core_only(path: Path) -> None:
    backend = path.relative_to(PACKAGE).parts
    for module in imported_modules(path):
        assert not module.startswith("distil.pipeline"), f"{path} imports the application layer ({module})"
        if backend[0] == "components" and module.startswith("distil.components."):
            other = module.split(".")[2]
            assert other == backend[1], f"{path}: backends never import each other ({module})"
        if backend[0] == "components":
            assert not module.startswith("distil.training"), f"{path}: inference imports training ({module})"


# The core: distil's top-level modules and scoring/. `__init__` (the public facade) and `__main__` (the CLI
# entry point) sit above the layers on purpose.
CORE = sorted(
    [p for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}]
    + list((PACKAGE / "scoring").rglob("*.py"))
)


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_imports_no_layer_above_it(path: Path) -> None:
    for module in imported_modules(path):
        for layer in ("distil.pipeline", "distil.components", "distil.training", "distil.serve"):
            assert not module.startswith(layer), f"{path}: the core imports {module} ({layer} sits above it)"


# Lazy (in-function) imports of the training libraries outside training/, each with its reason.
LAZY_TRAINING_IMPORTS = {
    # A one-off export of the packaged MiniLM to ONNX on first use of retrieval; inference then runs onnxruntime.
    "components/llm/embedder.py",
}


def test_only_training_imports_torch_transformers_or_onnx() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(PACKAGE)
        if where.parts[0] == "training":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            if any(name.split(".")[0] in TRAINING_LIBRARIES for name in names):
                if id(node) in top_level or where.as_posix() not in LAZY_TRAINING_IMPORTS:
                    offenders.append(f"{where}:{node.lineno}: {', '.join(names)}")
    assert offenders == []


ENCODER_WITHOUT_TORCH = """
import json, sys

class NoTrainingLibraries:
    # A server without the train extra: torch and transformers cannot be imported at all. (spaCy's thinc
    # imports torch whenever it is installed, so only its absence shows what distil itself needs.)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError("blocked for this test: " + name)
        return None

sys.meta_path.insert(0, NoTrainingLibraries())
import importlib, pkgutil
import spacy
import distil.components.encoder as encoder
for info in pkgutil.walk_packages(encoder.__path__, encoder.__name__ + "."):
    importlib.import_module(info.name)
nlp = spacy.blank("en")
schemas = {
    "ner": {"@misc": "distil.NERSchema.v1", "labels": ["person", "location"]},
    "textcat": {"@misc": "distil.TextCatSchema.v1", "labels": ["a", "b"]},
    "rel": {"@misc": "distil.RELSchema.v1", "labels": {"works_for": {"head": ["person"], "tail": ["org"]}}},
}
for task, schema in schemas.items():
    # No model directory yet: the component waits for from_disk, as when spacy.load restores a saved pipeline.
    nlp.add_pipe(f"distil_{task}_encoder", config={"model": "no-such-model", "schema": schema})
from distil.pipeline.tasks import pipeline_tasks
try:
    import distil.training.loop
    training = "imported"
except ImportError:
    training = "needs torch"
print(json.dumps({"tasks": pipeline_tasks(nlp), "torch": "torch" in sys.modules, "training": training}))
"""


def test_encoder_backend_imports_and_builds_without_torch() -> None:
    result = subprocess.run([sys.executable, "-c", ENCODER_WITHOUT_TORCH], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    assert report["tasks"] == {"distil_ner_encoder": "ner", "distil_textcat_encoder": "textcat", "distil_rel_encoder": "rel"}
    # The check above means something: the training package, the one that needs torch, cannot load there.
    assert report["training"] == "needs torch"


@pytest.mark.parametrize(
    ("factory", "settings"), [(make_openai_model, OpenAISettings), (make_llamacpp_model, LlamaCppSettings)]
)
def test_model_factories_pass_every_argument_to_their_settings(factory: object, settings: type) -> None:
    # spaCy validates a config against the registered function's typed arguments; the model reads the settings
    # object. The two lists must stay one list: same names, same defaults.
    arguments = {
        name: param.default for name, param in inspect.signature(factory).parameters.items()  # type: ignore[arg-type]
        if name != "cache"
    }
    fields = {
        f.name: inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(settings)
    }
    assert arguments == fields


def test_the_one_percentile_is_numpys_linear_interpolation() -> None:
    import numpy as np

    from distil.latency import percentile

    values = [5.0, 1.0, 9.0, 3.0, 7.5, 2.25]
    for q in (0, 25, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 95) == 0.0
