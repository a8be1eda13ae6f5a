"""Check that the llama.cpp runtime can run on this CPU, in a child process, before using it in process.

llama-cpp-python compiles llama.cpp when it is installed, and its default build
tunes the code to the CPU that compiles it (``-march=native``). Such a build,
or a wheel cached on one machine and installed on another, can die on a
different CPU with SIGILL or SIGSEGV the first time it decodes a token, taking
the whole Python process (and a user's run or test session) down with no
message. So before :mod:`llamacpp` loads a model in process, a child process
imports llama-cpp-python, prints llama.cpp's compiled CPU features, loads the
model and generates one token. A crash there becomes a :class:`RuntimeCheckError`
that names the runtime, what it was built for, what this CPU lacks, and how to
rebuild it. A passing check is remembered (per library file, CPU and model) so
it costs one child process per machine, not per run. ``distil doctor`` runs
the same check and prints the report.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ....errors import DistilError

# What the child process runs: import, report the build, load the model, decode one token.
_PROBE = r"""
import json, sys
info = {"stage": "import"}
print(json.dumps(info), flush=True)
import llama_cpp
info = {"stage": "system_info", "version": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace")}
print(json.dumps(info), flush=True)
print(json.dumps({"stage": "load"}), flush=True)
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_threads=1, verbose=False)
print(json.dumps({"stage": "decode"}), flush=True)
out = llm("The capital of France is", max_tokens=1, temperature=0.0)
print(json.dumps({"stage": "done", "text": out["choices"][0]["text"]}), flush=True)
"""

# llama.cpp's names for the CPU features it was compiled with -> the Linux /proc/cpuinfo flag.
_FEATURE_FLAGS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX_VNNI": "avx_vnni",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}

# tools/llama-wheel.sh's x86-64 flags (a test keeps the two equal): any AVX2 CPU, AVX-512 and AMX off.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF"
)
# The version `make install` builds (the Makefile's LLAMA_CPP_VERSION).
LLAMA_CPP_VERSION = "0.3.36"


def install_command(version: str = LLAMA_CPP_VERSION, reinstall: bool = False) -> str:
    """The pip command that builds llama-cpp-python ``version`` with :data:`PORTABLE_CMAKE_ARGS`.

    llama-cpp-python ships as source only, and its own default build is
    ``-march=native``: a bare ``pip install llama-cpp-python`` gives a
    library that can crash on any other CPU. Every message that tells a
    user to install or rebuild it gives this command (or ``make install``).
    """
    # A rebuild replaces the library only (its dependencies are there); a first install also takes the server extra.
    what = f"--force-reinstall --no-deps llama-cpp-python=={version}" if reinstall else f"'llama-cpp-python[server]=={version}'"
    return f"CMAKE_ARGS='{PORTABLE_CMAKE_ARGS}' pip install --no-cache-dir {what}"


def install_hint(version: str = LLAMA_CPP_VERSION, reinstall: bool = False) -> str:
    """``make install`` in a checkout, or :func:`install_command` elsewhere: the fix named in error messages."""
    verb = "rebuild" if reinstall else "install"
    return (f"{verb} llama-cpp-python with portable flags: `make install` in a distil checkout "
            f"(tools/llama-wheel.sh), or {install_command(version, reinstall)}")


class RuntimeCheckError(DistilError, RuntimeError):
    """The llama.cpp runtime cannot run on this machine; the message names the cause and the fix."""


@dataclass
class ProbeResult:
    """What the child process got to: its exit, the llama.cpp build it saw, and what it printed."""

    ok: bool
    returncode: Optional[int]
    stage: str
    version: str = ""
    system_info: str = ""
    stderr: str = ""
    timed_out: bool = False
    compiled: list[str] = field(default_factory=list)

    @property
    def signal_name(self) -> str:
        """The signal that killed the child (``SIGSEGV``, ``SIGILL``), or ``""`` if it exited."""
        if self.returncode is None or self.returncode >= 0:
            return ""
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"


def cpu_description() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or what :mod:`platform` knows."""
    for line in _cpuinfo().splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (Linux only; empty elsewhere)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def compiled_features(system_info: str) -> list[str]:
    """The CPU features llama.cpp was compiled to use, from ``llama_print_system_info()``.

    It prints ``CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ...``; features set to 1
    are the instructions the library may execute.
    """
    features = []
    for part in system_info.split("|"):
        name, _, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if value.strip() == "1" and name:
            features.append(name)
    return features


def missing_features(compiled: list[str], flags: set[str]) -> list[str]:
    """The compiled features this CPU does not report (empty when the flags are unknown)."""
    if not flags:
        return []
    return [name for name in compiled if name in _FEATURE_FLAGS and _FEATURE_FLAGS[name] not in flags]


def probe(model_path: Path, *, timeout: float = 120.0, command: Optional[list[str]] = None) -> ProbeResult:
    """Run the one-token smoke generation of ``model_path`` in a child process and report how far it got.

    ``command`` replaces the child's command line (the model path is appended);
    it exists so that tests can check the reporting on a real crashing child.
    """
    argv = [*(command or [sys.executable, "-c", _PROBE]), str(model_path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        stdout, stderr, code, timed_out = done.stdout, done.stderr, done.returncode, False
    except subprocess.TimeoutExpired as err:
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        code, timed_out = None, True
    result = ProbeResult(ok=False, returncode=code, stage="start", stderr=stderr[-2000:], timed_out=timed_out)
    for line in stdout.splitlines():
        try:
            info = json.loads(line)
        except json.JSONDecodeError:
            continue
        result.stage = info.get("stage", result.stage)
        result.version = info.get("version", result.version)
        result.system_info = info.get("system_info", result.system_info)
    result.compiled = compiled_features(result.system_info)
    result.ok = code == 0 and result.stage == "done"
    return result


def explain(result: ProbeResult, model_path: Path) -> str:
    """A message for a failed probe: what died where, the build against this CPU, and the fix."""
    runtime = f"llama.cpp (llama-cpp-python {result.version or '?'})"
    if result.timed_out:
        what = "did not finish the one-token smoke generation in time"
    elif result.signal_name:
        what = f"crashed with {result.signal_name}"
    else:
        what = f"exited with status {result.returncode}"
    where = {
        "start": "before importing llama_cpp",
        "import": "while importing llama_cpp",
        "system_info": "after importing llama_cpp",
        "load": f"while loading {model_path.name}",
        "decode": "while decoding the first token",
        "done": "after the smoke generation",
    }.get(result.stage, result.stage)
    lines = [f"{runtime} {what} {where} on this CPU ({cpu_description()})."]
    if result.compiled:
        lines.append(f"  built for: {', '.join(result.compiled)}")
    missing = missing_features(result.compiled, cpu_flags())
    if missing:
        lines.append(f"  this CPU lacks: {', '.join(missing)}")
    tail = result.stderr.strip().splitlines()[-3:]
    if tail:
        lines.append("  stderr: " + " | ".join(tail))
    no_backend = result.stage in ("load", "decode") and "CPU" not in result.system_info
    if no_backend:
        # A GGML_BACKEND_DL build whose CPU backend libraries were not shipped: it fails to load any model.
        lines.append("  cause: this llama.cpp build has no CPU backend (its system info lists none)")
    if result.stage == "load" and not result.signal_name and not result.timed_out and not no_backend:
        # An exception while loading (not a crash) is the model file's fault, not the build's.
        lines.append(f"  fix: check that {model_path} is a GGUF file this llama.cpp can read")
    else:
        lines.append("  fix: " + install_hint(result.version or LLAMA_CPP_VERSION, reinstall=True))
    lines.append("  details: distil doctor")
    return "\n".join(lines)


def _state_key(model_path: Path) -> str:
    """What a passing check depends on: the llama library file, the CPU, the Python and the model."""
    try:
        import llama_cpp

        library = Path(llama_cpp.__file__).parent / "lib"
        libs = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in library.glob("*.so*"))
    except (ImportError, OSError):
        libs = []
    stat = model_path.stat()
    parts = [sys.executable, repr(libs), cpu_description(), " ".join(sorted(cpu_flags())), str(model_path), str(stat.st_size)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _stamp_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distil" / "runtime-checks"


def ensure_runtime(model_path: Path, *, timeout: float = 120.0, command: Optional[list[str]] = None) -> None:
    """Raise :class:`RuntimeCheckError` unless llama.cpp can decode ``model_path`` on this CPU.

    Runs :func:`probe` once per library build, CPU and model, and remembers a
    pass in ``~/.cache/distil/runtime-checks/``. ``DISTIL_SKIP_RUNTIME_CHECK=1``
    skips it (for a runtime known to work, where a child process is unwelcome).
    ``command`` is passed to :func:`probe`.
    """
    if os.environ.get("DISTIL_SKIP_RUNTIME_CHECK") == "1":
        return
    stamp = _stamp_dir() / _state_key(model_path)
    if stamp.exists() and command is None:
        return
    result = probe(model_path, timeout=timeout, command=command)
    if not result.ok:
        raise RuntimeCheckError(explain(result, model_path))
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"version": result.version, "system_info": result.system_info}))
    except OSError:
        pass  # a read-only home only costs the check again next time
