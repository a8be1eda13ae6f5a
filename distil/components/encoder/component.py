"""What the three encoder components share: loading a model directory, schema check, serialisation."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from ...schemas import TaskSchema
from .alignment import DEFAULT_BUCKET_WINDOW
from .manifest import MANIFEST, ONNX_FILES, PRECISIONS, TOKENIZER, ModelDirError, check_model_schema
from .session import EncoderSession, SessionSettings

SAVED_MODEL = "model"
# The speed settings every encoder factory takes, with their defaults (docs/encoder.md, "Speed settings").
SPEED_DEFAULTS: dict[str, Any] = {
    "bucket_window": DEFAULT_BUCKET_WINDOW,
    "inter_op_threads": 1,
    "graph_optimization": "all",
    "mem_pattern": True,
    "spin": False,
}


class EncoderComponent:
    """Base of the encoder components: holds an :class:`EncoderSession` for one task.

    The model directory is loaded (and checked against the schema) when the
    component is built. When it does not exist the component waits for
    ``from_disk`` (``spacy.load`` of a saved pipeline builds components from
    the saved config first, then restores the copy saved with the pipeline).
    A pipeline built from a config file gets no ``from_disk``: ``distil.load``
    then calls :meth:`distil_check_ready`, so a missing model directory is a
    :class:`ModelDirError` naming the path at load time, before any document.
    """

    distil_task = ""

    def __init__(
        self,
        nlp: Language,
        name: str,
        model: Union[str, Path],
        schema: TaskSchema,
        precision: str = "int8",
        threads: int = 1,
        batch_size: int = 32,
        bucket_window: int = DEFAULT_BUCKET_WINDOW,
        inter_op_threads: int = 1,
        graph_optimization: str = "all",
        mem_pattern: bool = True,
        spin: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelDirError(f"component {name!r}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if threads < 1 or batch_size < 1:
            raise ModelDirError(
                f"component {name!r}: threads and batch_size must be at least 1, got threads = {threads}, "
                f"batch_size = {batch_size}"
            )
        if bucket_window < 0:
            raise ModelDirError(
                f"component {name!r}: bucket_window must be 0 (no length sorting) or a number of documents, "
                f"got {bucket_window}"
            )
        try:
            self.session_settings = SessionSettings(threads, inter_op_threads, graph_optimization, mem_pattern, spin)
        except ModelDirError as err:
            raise ModelDirError(f"component {name!r}: {err}") from None
        self.bucket_window = bucket_window
        self.name = name
        self.vocab = nlp.vocab
        self.schema = schema
        self.model_path = Path(model) if str(model) else None
        self.precision = precision
        self.threads = threads
        self.batch_size = batch_size
        self._session: Optional[EncoderSession] = None
        if self.model_path is not None and self.model_path.exists():
            self._load(self.model_path)

    def _load(self, directory: Path) -> None:
        session = EncoderSession(directory, self.precision, settings=self.session_settings)
        check_model_schema(session.manifest, self.schema, directory, self.distil_task)
        self._session = session

    def distil_check_ready(self) -> None:
        """Raise the :class:`ModelDirError` of :attr:`session` if no model is loaded (called once the pipeline is built)."""
        _ = self.session

    def distil_model_files(self) -> list[Path]:
        """The weight and tokenizer files this component runs (what it costs on disk), if loaded."""
        if self._session is None:
            return []
        return [self._session.model_file, self._session.tokenizer_file]

    @property
    def session(self) -> EncoderSession:
        """The loaded model; raises a clear error if the model directory was never found."""
        if self._session is None:
            where = "no encoder model directory is set" if self.model_path is None else (
                f"encoder model directory {self.model_path} not found"
            )
            raise ModelDirError(
                f"component {self.name!r}: {where}; train one with `distil train {self.distil_task} TRAIN DEV "
                f"--output DIR` and set components.{self.name}.model to it (the shipped configs read it from "
                f"[paths]: --paths.model DIR)"
            )
        return self._session

    def __call__(self, doc: Doc) -> Doc:
        """Annotate one document."""
        self.predict_docs([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        """Annotate documents in batches (each batch is further sorted by input length)."""
        for docs in minibatch(stream, size=batch_size):
            self.predict_docs(docs)
            yield from docs

    def predict_docs(self, docs: list[Doc]) -> None:
        """Run the model over ``docs`` and write the predictions; implemented per task."""
        raise NotImplementedError

    # --- serialisation: the model directory travels with the saved pipeline ---

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = ()) -> None:
        """Copy the runtime files of the model directory into the saved pipeline."""
        target = Path(path) / SAVED_MODEL
        source = self.session.directory
        target.mkdir(parents=True, exist_ok=True)
        for filename in (MANIFEST, TOKENIZER, *ONNX_FILES.values()):
            if (source / filename).exists() and (source / filename).resolve() != (target / filename).resolve():
                shutil.copyfile(source / filename, target / filename)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = ()) -> EncoderComponent:
        """Load the model directory saved with the pipeline by :meth:`to_disk`."""
        saved = Path(path) / SAVED_MODEL
        if not saved.exists():
            raise ModelDirError(f"{path}: no saved encoder model (expected {saved})")
        self.model_path = saved
        self._load(saved)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """Not supported: an encoder is a directory of files; use ``nlp.to_disk``."""
        raise NotImplementedError("encoder components serialise to disk only (nlp.to_disk)")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> Any:
        """Not supported: see :meth:`to_bytes`."""
        raise NotImplementedError("encoder components serialise to disk only (nlp.from_disk)")
