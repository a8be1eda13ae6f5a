#!/usr/bin/env bash
# Build (once) and install llama-cpp-python with explicit, portable build flags.
#
# Why: llama-cpp-python's default build passes -march=native, so the wheel is
# tuned to the CPU that compiled it and can crash (SIGSEGV/SIGILL) on another
# one; pip then caches that wheel under its version alone and reuses it on any
# machine. Here the flags are explicit, the wheel is built without pip's cache
# into a project-local directory keyed by everything that shapes the binary
# (package version, flags, compiler, architecture, Python tag), and a wheel is
# only ever reused under the same key.
#
# Usage: tools/llama-wheel.sh PYTHON            build if needed, then install into PYTHON's environment
#        tools/llama-wheel.sh PYTHON --build-only
# Environment:
#   LLAMA_CPP_VERSION   llama-cpp-python version (default below)
#   CMAKE_ARGS          override the build flags (default: portable x86-64 AVX2, see below); flags that
#                       do not name GGML_NATIVE are added to the portable ones, never a native build
#   LLAMA_WHEEL_DIR     the wheel cache (default: .wheels/ in the repository)
set -euo pipefail

py=${1:?usage: tools/llama-wheel.sh PYTHON [--build-only]}
mode=${2:-install}
root=$(cd "$(dirname "$0")/.." && pwd)
version=${LLAMA_CPP_VERSION:-0.3.36}
arch=$(uname -m)

case "$arch" in
  x86_64|amd64)
    # Any x86-64 CPU with AVX2 (Intel Haswell and later, AMD Zen and later).
    # AVX-512 and AMX stay off: the build that crashed on an AVX-512/AMX Xeon
    # was the -march=native one.
    portable="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" ;;
  aarch64|arm64)
    portable="-DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8-a" ;;
  *)
    portable="-DGGML_NATIVE=OFF" ;;
esac
if [ -z "${CMAKE_ARGS:-}" ]; then
  CMAKE_ARGS=$portable
else
  case "$CMAKE_ARGS" in
    *GGML_NATIVE*) ;;
    # A user's own flags (e.g. -DGGML_CUDA=on) that say nothing of GGML_NATIVE would get llama.cpp's default,
    # a -march=native build: put the portable CPU flags first, so that the user's flags still win.
    *) CMAKE_ARGS="$portable $CMAKE_ARGS" ;;
  esac
fi
export CMAKE_ARGS

pytag=$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
compiler=$( (cc --version 2>/dev/null || echo no-cc) | head -n 1)
# A build tuned to this CPU is only valid on this CPU: its key names the CPU too.
cpu=""
case "$CMAKE_ARGS" in
  *GGML_NATIVE=ON*|*GGML_NATIVE=on*|*GGML_NATIVE=1*) cpu=$(grep -m1 -E '^(model name|flags)' /proc/cpuinfo 2>/dev/null; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) ;;
esac
key=$(printf '%s\n' "$version" "$CMAKE_ARGS" "$compiler" "$arch" "$pytag" "$cpu" | sha256sum | cut -c1-16)
dir=${LLAMA_WHEEL_DIR:-$root/.wheels}/llama-cpp-python-$version-$key

if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "llama-wheel: building llama-cpp-python $version (key $key; several minutes on 2 cores)"
  echo "llama-wheel: CMAKE_ARGS=$CMAKE_ARGS"
  tmp="$dir.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # --no-cache-dir: never take a wheel that pip built elsewhere under the same version.
  "$py" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$version" -w "$tmp"
  printf 'version=%s\ncmake_args=%s\ncompiler=%s\narch=%s\npython=%s\n' \
    "$version" "$CMAKE_ARGS" "$compiler" "$arch" "$pytag" >"$tmp/BUILD"
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
[ "$mode" = "--build-only" ] && { echo "$dir"; exit 0; }

record=$("$py" -c 'import sys; print(sys.prefix)')/llama-cpp-build.txt
if ! cmp -s "$dir/BUILD" "$record" 2>/dev/null; then
  wheel=$(ls "$dir"/llama_cpp_python-*.whl | head -n 1)
  "$py" -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$wheel"
  # Its dependencies (and the server extra) from the index, the wheel itself stays.
  "$py" -m pip install --quiet "$wheel[server]"
  cp "$dir/BUILD" "$record"
  echo "llama-wheel: installed $(basename "$wheel") built with: $CMAKE_ARGS"
fi
