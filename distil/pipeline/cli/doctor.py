"""``distil doctor``: check that this machine can run distil's runtimes, and say what to fix if not."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

import typer

from .app import app
from .overrides import fail


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _line(name: str, value: str) -> None:
    typer.echo(f"{name:<18}{value}")


@app.command("doctor")
def doctor_command(
    model: Optional[Path] = typer.Option(
        None, "--model", help="GGUF file for the smoke generation (default: the packaged Gemma 3 270M)."
    ),
    timeout: float = typer.Option(180.0, "--timeout", min=1.0, help="Seconds the smoke generation may take."),
) -> None:
    """Check the embedded LLM runtime: CPU features, llama.cpp's build, a one-token generation in a child process.

    A llama.cpp build tuned to another CPU crashes (SIGSEGV, SIGILL) the first
    time it decodes; here that happens in a child process and is reported with
    the CPU features the build uses, the ones this CPU lacks and the command
    that rebuilds it. Exits 1 when the embedded model cannot run.

    Example: distil doctor
    """
    from ...components.llm.models.gguf import default_model_path
    from ...components.llm.models.runtime import (
        cpu_description,
        cpu_flags,
        explain,
        install_hint,
        missing_features,
        probe,
    )

    _line("python", f"{sys.version.split()[0]} ({sys.executable})")
    _line("platform", platform.platform())
    _line("cpu", cpu_description())
    flags = cpu_flags()
    shown = [f for f in ("avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512_bf16", "avx_vnni", "amx_int8") if f in flags]
    _line("cpu features", " ".join(shown) or "unknown")
    for package in ("llama-cpp-python", "onnxruntime", "spacy", "spacy-llm"):
        _line(package, _version(package))
    build = Path(sys.prefix) / "llama-cpp-build.txt"
    spec = importlib.util.find_spec("llama_cpp")
    location = Path(spec.origin).parent if spec and spec.origin else None
    if location is not None:
        _line("llama location", str(location))
    if location is not None and Path(sys.prefix) not in location.parents:
        # The record describes the environment's own install, not a llama_cpp found first on PYTHONPATH.
        _line("llama build", "unknown (llama_cpp is imported from outside this environment)")
    elif build.exists():
        flags_line = next((ln for ln in build.read_text().splitlines() if ln.startswith("cmake_args=")), "")
        _line("llama build", flags_line.removeprefix("cmake_args=") or "(no flags recorded)")
    else:
        _line("llama build", "not recorded (installed outside tools/llama-wheel.sh: flags unknown)")
    if _version("llama-cpp-python") == "not installed":
        raise fail(f"llama-cpp-python is not installed: {install_hint()}")
    try:
        path = model or default_model_path()
    except ValueError as err:
        raise fail(str(err)) from None
    _line("model", str(path))
    result = probe(path, timeout=timeout)
    _line("llama.cpp", result.system_info.strip() or "(no CPU features reported)")
    missing = missing_features(result.compiled, flags)
    if missing:
        _line("not on this cpu", ", ".join(missing))
    if not result.ok:
        raise fail(explain(result, path))
    _line("smoke", "ok: one token generated in a child process")
