"""The fingerprint of an annotation job: what determines a pipeline's answers, part by part.

``distil annotate`` stores it in the annotation directory (``job.json``) and
compares it on every resume, so that a corpus is never annotated half by one
pipeline and half by another without the user saying so (``--new-job``).
The parts are named so that the error can say what changed:

- ``pipeline``: the components and their factories, in order;
- ``schemas``: the config's ``[schemas]`` block (labels, descriptions, types);
- ``components.NAME``: the component's config block, less the settings that
  change how fast or how cached it runs but not what it answers (threads,
  concurrency, timeouts, retries, the response cache);
- ``files.NAME``: the name, size and content hash of each model file the
  component runs (an ONNX student, a GGUF model), so a retrained model under
  the same path is a change;
- ``prompts.NAME``: what the component's parts declare through the
  ``distil_fingerprint`` hook (an LLM task's template and examples).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from spacy.language import Language

from ..protocols import Fingerprinted
from .parts import component_parts, model_files

# Settings that change the speed, the cost of a rerun or the logs, never an answer.
OPERATIONAL = frozenset({
    "cache", "n_threads", "n_batch", "concurrency", "timeout", "max_retries", "backoff", "backoff_max",
    "save_io", "api_key_env", "trust_env", "price_per_1k_prompt", "price_per_1k_completion", "verbose",
    "batch_size",
})
_HASHES: dict[tuple[str, int, int], str] = {}


def _without_operational(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_operational(v) for k, v in value.items() if k not in OPERATIONAL}
    if isinstance(value, (list, tuple)):
        return [_without_operational(v) for v in value]
    return value


def file_digest(path: Path) -> str:
    """The sha256 of a file's content (16 hex digits), remembered per (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()[:16]
    return _HASHES[key]


def pipeline_fingerprint(nlp: Language) -> dict[str, Any]:
    """The job fingerprint of ``nlp``: a flat mapping of named parts (see the module docstring)."""
    config = nlp.config.interpolate()
    parts: dict[str, Any] = {
        "pipeline": [[name, config["components"].get(name, {}).get("factory", "")] for name in nlp.pipe_names],
        "schemas": _without_operational(dict(config.get("schemas", {}))),
    }
    for name, files in model_files(nlp).items():
        parts[f"files.{name}"] = [[f.name, f.stat().st_size, file_digest(f)] for f in files if f.is_file()]
    for name, pipe in nlp.pipeline:
        parts[f"components.{name}"] = _without_operational(dict(config["components"].get(name, {})))
        prompts: dict[str, Any] = {}
        for part in component_parts(pipe):
            if isinstance(part, Fingerprinted):
                prompts.update(part.distil_fingerprint())
        if prompts:
            parts[f"prompts.{name}"] = prompts
    return parts
