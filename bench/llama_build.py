"""Speed of llama.cpp builds side by side: the portable build `make` installs against a CPU-tuned one.

`tools/llama-wheel.sh` builds llama-cpp-python with explicit x86-64 AVX2 flags
(no -march=native), so the wheel runs on any AVX2 CPU; llama-cpp-python's own
default tunes llama.cpp to the compiling CPU (AVX-512, VNNI, BF16 where the
builder has them) and crashed on another machine. This measures what the
portability costs. Each build's wheel is unpacked into its own directory and
run in its own child process (one build at a time, so they never compete for
the cores), on the packaged Gemma 3 270M: prompt processing (a ~230-token
prompt evaluated from an empty KV cache) and token generation (one token per
decode call, as the LLM tasks generate), each the median of --repeats runs
after one warm-up, at 1 and 2 threads; and, at 1 thread, distil's NER task end
to end (configs/ner_llm.cfg, answer cache off) over the first --docs WNUT-17
test sentences. Ends with RESULT lines: the portable
build's speed as a fraction of the tuned one.

    CMAKE_ARGS="-DGGML_NATIVE=ON" tools/llama-wheel.sh .venv/bin/python --build-only   # the tuned build
    tools/llama-wheel.sh .venv/bin/python --build-only                                # the portable build
    .venv/bin/python bench/llama_build.py \
        --build portable=.wheels/llama-cpp-python-0.3.36-<key> --build native=.wheels/llama-cpp-python-0.3.36-<key>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distil.components.llm.models.gguf import default_model_path  # noqa: E402

# Runs inside the child, with the build's unpacked wheel first on sys.path.
_CHILD = r"""
import json, statistics, sys, time
import llama_cpp
model, threads, repeats, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=256, n_threads=threads, n_threads_batch=threads,
                      verbose=False)
text = ("Named entities are people, places and organisations mentioned in a text. " * 18).strip()
tokens = llm.tokenize(text.encode(), add_bos=True)
pp, tg = [], []
for run in range(repeats + 1):
    llm.reset()
    started = time.perf_counter()
    llm.eval(tokens)
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(gen):
        llm.eval([tokens[-1]])
    gen_s = time.perf_counter() - started
    if run:  # the first run warms caches and pages in the weights
        pp.append(len(tokens) / prompt_s)
        tg.append(gen / gen_s)
docs_per_s = 0.0
texts = json.loads(sys.argv[5])
if texts:  # distil's NER task end to end: the shipped embedded config, answer cache off
    import distil
    nlp = distil.load(sys.argv[6], {"llm.cache": False, "llm.n_threads": threads})
    list(nlp.pipe(texts[:2]))  # warm-up: loads the model and evaluates the few-shot prefix
    started = time.perf_counter()
    list(nlp.pipe(texts))
    docs_per_s = len(texts) / (time.perf_counter() - started)
print(json.dumps({"version": llama_cpp.__version__, "prompt_tokens": len(tokens),
                  "system_info": llama_cpp.llama_print_system_info().decode(),
                  "pp": statistics.median(pp), "tg": statistics.median(tg), "docs_per_s": docs_per_s}))
"""


def unpack(build_dir: Path, into: Path) -> Path:
    """Unpack the one wheel in ``build_dir`` (a tools/llama-wheel.sh output) and return the directory."""
    wheels = sorted(build_dir.glob("llama_cpp_python-*.whl"))
    if not wheels:
        raise SystemExit(f"no llama_cpp_python wheel in {build_dir}: build it with tools/llama-wheel.sh --build-only")
    with zipfile.ZipFile(wheels[0]) as archive:
        archive.extractall(into)
    return into


def wnut_sentences(n: int) -> list[str]:
    """The first ``n`` WNUT-17 test sentences (tokens joined by spaces), if the shared data is there."""
    path = REPO.parent / "shared" / "data" / "wnut17" / "emerging.test.annotated"
    if n <= 0 or not path.exists():
        return []
    sentences, tokens = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            tokens.append(line.split("\t")[0])
        elif tokens:
            sentences.append(" ".join(tokens))
            tokens = []
    return sentences[:n]


def measure(site: Path, model: Path, threads: int, repeats: int, gen: int, texts: list[str]) -> dict[str, object]:
    """Time one build in a child process whose ``llama_cpp`` comes from ``site`` (distil from this checkout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(threads), str(repeats), str(gen), json.dumps(texts),
         str(REPO / "configs" / "ner_llm.cfg")],
        capture_output=True, text=True, env=env, check=True, cwd=tempfile.gettempdir(),
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, help="NAME=DIR of a tools/llama-wheel.sh build")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gen", type=int, default=32, help="tokens decoded one at a time per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the builds this many times (order effects)")
    parser.add_argument("--docs", type=int, default=30, help="WNUT-17 test sentences through configs/ner_llm.cfg")
    args = parser.parse_args()
    model = default_model_path()
    builds = dict(b.split("=", 1) for b in args.build)
    texts = wnut_sentences(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        sites = {name: unpack(Path(d), Path(tmp) / name) for name, d in builds.items()}
        speeds: dict[tuple[str, int], dict[str, list[float]]] = {}
        for _ in range(args.rounds):
            for threads in (int(t) for t in args.threads.split(",")):
                for name, site in sites.items():
                    got = measure(site, model, threads, args.repeats, args.gen, texts if threads == 1 else [])
                    slot = speeds.setdefault((name, threads), {"pp": [], "tg": [], "docs": []})
                    slot["docs"].append(float(got["docs_per_s"]))  # type: ignore[arg-type]
                    slot["pp"].append(float(got["pp"]))  # type: ignore[arg-type]
                    slot["tg"].append(float(got["tg"]))  # type: ignore[arg-type]
                    features = str(got["system_info"]).split("|")
                    print(f"{name:>10} threads={threads} pp={got['pp']:.1f} tok/s tg={got['tg']:.1f} tok/s "
                          f"ner={got['docs_per_s']:.2f} docs/s "
                          f"[{'|'.join(f.strip() for f in features if f.strip().endswith('= 1'))}]", flush=True)
    print()
    print("| build | threads | prompt tok/s | generation tok/s | distil NER docs/s |")
    print("|---|---|---|---|---|")
    for (name, threads), slot in sorted(speeds.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        docs = f"{statistics.median(slot['docs']):.2f}" if any(slot["docs"]) else "-"
        print(f"| {name} | {threads} | {statistics.median(slot['pp']):.1f} | {statistics.median(slot['tg']):.1f} | {docs} |")
    names = list(builds)
    if len(names) >= 2:
        portable, tuned = ("portable", "native") if {"portable", "native"} <= set(names) else names[:2]
        for threads in (int(t) for t in args.threads.split(",")):
            for kind in ("pp", "tg", "docs"):
                if not any(speeds[(tuned, threads)][kind]):
                    continue
                ratio = statistics.median(speeds[(portable, threads)][kind]) / statistics.median(
                    speeds[(tuned, threads)][kind]
                )
                print(f"RESULT {portable}_vs_{tuned}_{kind}_t{threads}={ratio:.3f}")


if __name__ == "__main__":
    main()
