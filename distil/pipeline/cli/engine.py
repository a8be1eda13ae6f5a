"""The engine options that ``distil annotate`` and ``distil run`` share: ``--engine local|ray`` and Ray's settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import typer
from spacy.language import Language

from ...errors import DistilError
from ..annotate import Engine, LocalEngine

ENGINES = ("local", "ray")

engine_options = SimpleNamespace(
    engine=typer.Option("local", "--engine", help="Where to annotate: local (this process) or ray (a Ray cluster)."),
    replicas=typer.Option(2, "--replicas", min=1, help="--engine ray: pipeline replicas (each loads the pipeline once)."),
    cpus_per_replica=typer.Option(
        1.0, "--cpus-per-replica", help="--engine ray: CPUs reserved per replica (0.25 for an LLM client waiting on HTTP)."
    ),
    gpus_per_replica=typer.Option(0.0, "--gpus-per-replica", help="--engine ray: GPUs reserved per replica."),
    ray_address=typer.Option(
        None, "--ray-address",
        help="--engine ray: the cluster (auto, ray://host:10001); without it a local Ray instance is started.",
    ),
)


@dataclass(frozen=True)
class EngineOptions:
    """The engine options as given on the command line."""

    engine: str = "local"
    replicas: int = 2
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    ray_address: Optional[str] = None

    def __post_init__(self) -> None:
        # Checked when the command line is read: a typo must not create an output directory first.
        if self.engine not in ENGINES:
            raise DistilError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.engine == "local" and self.ray_address is not None:
            raise DistilError("--ray-address needs --engine ray")


@contextmanager
def open_engine(
    options: EngineOptions, nlp: Language, config: Path, overrides: Mapping[str, Any], code: Optional[Path]
) -> Iterator[Engine]:
    """The engine the options ask for, started, and stopped afterwards (a local Ray instance with it)."""
    if options.engine == "local":
        yield LocalEngine(nlp)
        return
    from ...engines.ray import RayEngine, RaySettings

    settings = RaySettings(
        replicas=options.replicas, cpus_per_replica=options.cpus_per_replica,
        gpus_per_replica=options.gpus_per_replica, address=options.ray_address,
    )
    with RayEngine(config, overrides, settings, code=code) as engine:
        yield engine
