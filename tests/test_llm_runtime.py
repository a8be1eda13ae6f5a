"""The llama.cpp runtime check: a crash in the child becomes a message, a working build passes once.

The crashing children are real processes killed by a real SIGSEGV/SIGILL, as a
llama.cpp build tuned to another CPU dies; the passing case runs the real
packaged model through the installed llama-cpp-python.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from distil.components.llm.models.runtime import (
    LLAMA_CPP_VERSION,
    PORTABLE_CMAKE_ARGS,
    RuntimeCheckError,
    compiled_features,
    ensure_runtime,
    explain,
    install_hint,
    missing_features,
    probe,
)

from .conftest import distil_cli

SYSTEM_INFO = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 |"


def crashing_child(stage: str, sig: signal.Signals) -> list[str]:
    """A child that reports the build and the stage it reached, then dies of ``sig`` as llama.cpp would."""
    code = (
        "import json, os, signal, sys\n"
        f"print(json.dumps({{'stage': 'system_info', 'version': '0.3.36', 'system_info': {SYSTEM_INFO!r}}}), flush=True)\n"
        f"print(json.dumps({{'stage': {stage!r}}}), flush=True)\n"
        "sys.stderr.write('ggml: about to run a kernel\\n'); sys.stderr.flush()\n"
        f"os.kill(os.getpid(), signal.{sig.name})\n"
    )
    return [sys.executable, "-c", code]


def test_compiled_features_reads_llamas_system_info() -> None:
    assert compiled_features(SYSTEM_INFO) == ["SSE3", "AVX", "AVX2", "AVX512", "AVX512_BF16", "AMX_INT8", "OPENMP", "REPACK"]
    assert compiled_features("CPU : AVX = 0 | AVX2 = 1 |") == ["AVX2"]


def test_missing_features_maps_to_cpuinfo_flags() -> None:
    compiled = compiled_features(SYSTEM_INFO)
    assert missing_features(compiled, {"pni", "avx", "avx2"}) == ["AVX512", "AVX512_BF16", "AMX_INT8"]
    assert missing_features(compiled, {"pni", "avx", "avx2", "avx512f", "avx512_bf16", "amx_int8"}) == []
    assert missing_features(compiled, set()) == []  # flags unknown (not Linux): claim nothing


@pytest.mark.parametrize(("sig", "stage", "where"), [
    (signal.SIGSEGV, "decode", "while decoding the first token"),
    (signal.SIGILL, "load", "while loading model.gguf"),
])
def test_probe_reports_a_crashing_runtime(tmp_path: Path, sig: signal.Signals, stage: str, where: str) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    result = probe(model, command=crashing_child(stage, sig))
    assert not result.ok
    assert result.signal_name == sig.name
    assert result.stage == stage
    assert result.version == "0.3.36"
    message = explain(result, model)
    assert f"llama.cpp (llama-cpp-python 0.3.36) crashed with {sig.name} {where}" in message
    assert "built for: SSE3, AVX, AVX2, AVX512" in message
    assert "ggml: about to run a kernel" in message
    assert "-DGGML_NATIVE=OFF" in message and "llama-cpp-python==0.3.36" in message
    assert "distil doctor" in message


def test_probe_reports_a_hanging_runtime(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    result = probe(model, timeout=1.0, command=[sys.executable, "-c", "import time; time.sleep(30)"])
    assert not result.ok and result.timed_out
    assert "did not finish the one-token smoke generation in time" in explain(result, model)


def test_ensure_runtime_raises_and_remembers_nothing_on_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DISTIL_SKIP_RUNTIME_CHECK", raising=False)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(RuntimeCheckError, match="crashed with SIGSEGV while decoding the first token"):
        ensure_runtime(model, command=crashing_child("decode", signal.SIGSEGV))
    assert not (tmp_path / "cache" / "distil" / "runtime-checks").exists()


@pytest.mark.slow
def test_the_installed_runtime_passes_and_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llama_cpp")
    from distil.components.llm.models.gguf import default_model_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DISTIL_SKIP_RUNTIME_CHECK", raising=False)
    model = default_model_path()
    result = probe(model)
    assert result.ok, explain(result, model)
    assert "AVX2 = 1" in result.system_info or "NEON" in result.system_info or result.compiled
    ensure_runtime(model)
    stamps = list((tmp_path / "cache" / "distil" / "runtime-checks").iterdir())
    assert len(stamps) == 1 and json.loads(stamps[0].read_text())["version"] == result.version


@pytest.mark.slow
def test_doctor_reports_the_build_and_a_passing_smoke_generation() -> None:
    pytest.importorskip("llama_cpp")
    done = subprocess.run([*distil_cli(), "doctor"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke             ok" in done.stdout
    assert "llama.cpp         CPU :" in done.stdout


def test_doctor_fails_with_the_fix_for_a_model_that_cannot_run(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file at all")
    done = subprocess.run([*distil_cli(), "doctor", "--model", str(broken)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "while loading broken.gguf" in done.stderr
    assert f"fix: check that {broken} is a GGUF file" in done.stderr


def test_a_build_without_a_cpu_backend_is_named_and_rebuilt(tmp_path: Path) -> None:
    # A GGML_BACKEND_DL build whose backend libraries did not make it into the wheel: llama.cpp
    # reports no CPU features and refuses every model, which is the build's fault, not the file's.
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    code = (
        "import json, sys\n"
        "print(json.dumps({'stage': 'system_info', 'version': '0.3.36', 'system_info': ''}), flush=True)\n"
        "print(json.dumps({'stage': 'load'}), flush=True)\n"
        "sys.exit('ValueError: Failed to load model from file')\n"
    )
    result = probe(model, command=[sys.executable, "-c", code])
    message = explain(result, model)
    assert "this llama.cpp build has no CPU backend" in message
    assert "fix: rebuild llama-cpp-python" in message


def test_the_portable_llama_build_holds_no_avx512_or_amx_instructions() -> None:
    """What `make install` built runs on any x86-64 CPU with AVX2: no zmm (AVX-512) or tile (AMX) instruction.

    A native build on an AVX-512/AMX machine emits them and dies with SIGILL on other CPUs; the flags of
    tools/llama-wheel.sh forbid them, and this reads the machine code to check the flags took effect.
    """
    if platform.machine() not in ("x86_64", "AMD64") or shutil.which("objdump") is None:
        pytest.skip("x86-64 with objdump only")
    record = Path(sys.prefix) / "llama-cpp-build.txt"
    if not record.exists() or "GGML_NATIVE=ON" in record.read_text():
        pytest.skip("not a portable build of tools/llama-wheel.sh (a native one is the user's choice)")
    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.origin is not None
    libraries = sorted((Path(spec.origin).parent / "lib").glob("libggml*.so"))
    assert libraries, "llama_cpp ships its ggml libraries"
    for library in libraries:
        code = subprocess.run(["objdump", "-d", str(library)], capture_output=True, text=True, check=True).stdout
        assert "%zmm" not in code, f"{library.name} holds AVX-512 instructions"
        assert "ldtilecfg" not in code and "tdpb" not in code, f"{library.name} holds AMX instructions"


REPO = Path(__file__).resolve().parent.parent


def test_every_way_to_get_llama_cpp_names_the_portable_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """No install path builds llama.cpp with llama-cpp-python's -march=native default.

    The build script, the Makefile and the messages that ask for the runtime agree on the flags and the version,
    and pip is never asked to build it implicitly: the ``llm`` extra does not list it.
    """
    import configparser

    script = (REPO / "tools" / "llama-wheel.sh").read_text()
    assert f'portable="{PORTABLE_CMAKE_ARGS}"' in script, "tools/llama-wheel.sh and PORTABLE_CMAKE_ARGS differ"
    assert f"version=${{LLAMA_CPP_VERSION:-{LLAMA_CPP_VERSION}}}" in script
    assert f"LLAMA_CPP_VERSION ?= {LLAMA_CPP_VERSION}" in (REPO / "Makefile").read_text()
    for flag in ("-DGGML_NATIVE=OFF", "-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF"):
        assert flag in PORTABLE_CMAKE_ARGS
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    for extra, requirements in setup["options.extras_require"].items():
        assert "llama-cpp-python" not in requirements, f"the {extra!r} extra would let pip build llama.cpp natively"
    hint = install_hint()
    assert f"CMAKE_ARGS='{PORTABLE_CMAKE_ARGS}' pip install --no-cache-dir 'llama-cpp-python[server]==" in hint
    assert "make install" in hint and "distil[llm]" not in hint
    # The message a user gets without the runtime carries that command.
    from distil.components.llm.models import make_llamacpp_model

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    model = make_llamacpp_model(n_ctx=512)
    with pytest.raises(ValueError, match="needs llama-cpp-python") as raised:
        model._load()
    assert hint in str(raised.value)
