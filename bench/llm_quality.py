"""NER quality and speed of the embedded model: distil.NER.v1 vs spacy-llm's spacy.NER.v3.

Both run the packaged Gemma 3 270M (llama.cpp, in process, same threads and
context) with the same two few-shot examples and label descriptions on the
first N sentences of the WNUT-17 test set. spacy-llm gets a minimal model
wrapper around the same llama.cpp completion call (greedy, stop at a blank
line); distil.NER.v1 runs through distil.LlamaCpp.v1 (JSON-schema grammar).
The answer cache is off. Entity-level micro P/R/F1 (exact span and label) from
``distil.scoring.score_entities``, the scorer of ``distil evaluate``.

    .venv/bin/python bench/llm_quality.py [--docs 200] [--threads 1]

Levers are tried on the dev split, distil only, with task or model settings
overridden as JSON (the numbers in docs/benchmarks.md came from such runs):

    .venv/bin/python bench/llm_quality.py --split dev --docs 100 --distil-only \
        --task '{"examples": "path/to/examples.jsonl"}' --model '{"repeat_penalty": 1.0}'
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, cast  # noqa: UP035 - spacy-llm inspects typing generics

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import spacy  # noqa: E402
from llama_cpp import Llama  # noqa: E402
from llama_cpp.llama_types import CreateCompletionResponse  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc  # noqa: E402
from spacy_llm.registry import registry  # noqa: E402

from distil.components.llm.examples import load_examples  # noqa: E402
from distil.components.llm.models.gguf import default_model_path  # noqa: E402
from distil.pipeline.config import read_config  # noqa: E402
from distil.pipeline.io.conll import read_conll  # noqa: E402
from distil.pipeline.io.conversion_report import ConversionReport  # noqa: E402
from distil.pipeline.usage import collect_usage  # noqa: E402
from distil.scoring import score_entities  # noqa: E402

WNUT = {
    "test": Path("/work/shared/data/wnut17/emerging.test.annotated"),
    "dev": Path("/work/shared/data/wnut17/emerging.dev.conll"),
}
EXAMPLES = "distil:ner_wnut17.jsonl"


class LlamaCppText:
    """A spacy-llm model: plain-text completion of each prompt with a llama.cpp model."""

    def __init__(self, n_threads: int, n_ctx: int, max_tokens: int) -> None:
        self.llm = Llama(model_path=str(default_model_path()), n_ctx=n_ctx, n_threads=n_threads,
                         n_threads_batch=n_threads, n_batch=256, seed=0, verbose=False)
        self.max_tokens = max_tokens
        self.completion_tokens = 0

    def __call__(self, prompts: Iterable[Iterable[str]]) -> Iterable[Iterable[str]]:
        for group in prompts:
            out = []
            for prompt in group:
                result = cast(  # not streamed, so one response rather than an iterator of chunks
                    CreateCompletionResponse,
                    self.llm.create_completion(prompt, max_tokens=self.max_tokens, temperature=0.0, stop=["\n\n"]),
                )
                self.completion_tokens += result["usage"]["completion_tokens"]
                out.append(result["choices"][0]["text"])
            yield out

    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())


@registry.llm_models("bench.LlamaCppText.v1")
def llama_cpp_text(n_threads: int = 1, n_ctx: int = 2048, max_tokens: int = 256) -> LlamaCppText:
    return LlamaCppText(n_threads, n_ctx, max_tokens)


def label_descriptions() -> dict[str, str]:
    config = read_config(REPO / "configs" / "ner_llm.cfg")
    return dict(config["schemas"]["ner"]["labels"])


def spacy_llm_examples(path: Path) -> Path:
    """The same few-shot examples in spacy.NER.v3's format."""
    rows = []
    for doc in load_examples(EXAMPLES):
        rows.append({"text": doc.text, "spans": [
            {"text": e.text, "is_entity": True, "label": e.label_, "reason": f"is a {e.label_}"} for e in doc.ents
        ]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def distil_pipeline(
    labels: dict[str, str], threads: int, task: dict[str, Any] | None = None, model: dict[str, Any] | None = None
) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("llm", name="ner", config={
        "task": {"@llm_tasks": "distil.NER.v1", "schema": {"@misc": "distil.NERSchema.v1", "labels": labels},
                 "examples": EXAMPLES, **(task or {})},
        "model": {"@llm_models": "distil.LlamaCpp.v1", "n_threads": threads, "n_ctx": 2048, **(model or {})},
    })
    return nlp


def spacy_llm_pipeline(labels: dict[str, str], threads: int, examples: Path) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("llm", name="ner", config={
        "task": {"@llm_tasks": "spacy.NER.v3", "labels": list(labels), "label_definitions": labels,
                 "examples": {"@misc": "spacy.FewShotReader.v1", "path": str(examples)}},
        "model": {"@llm_models": "bench.LlamaCppText.v1", "n_threads": threads, "n_ctx": 2048},
    })
    return nlp


def entity_prf(pairs: Iterable[tuple[Doc, Doc]]) -> tuple[float, float, float]:
    """Micro precision, recall and F1 of ``(predicted, gold)`` Doc pairs, as ``distil evaluate`` scores them.

    0.0 where spaCy's scorer has nothing to measure (no entity on either side).
    """
    scores = score_entities(pairs)
    return scores["ents_p"] or 0.0, scores["ents_r"] or 0.0, scores["ents_f"] or 0.0


def evaluate(nlp: Language, gold: list[Doc]) -> dict[str, Any]:
    started = time.perf_counter()
    predicted = [nlp(doc.text) for doc in gold]
    elapsed = time.perf_counter() - started
    precision, recall, f1 = entity_prf(zip(predicted, gold, strict=True))
    return {"p": precision, "r": recall, "f1": f1, "docs_per_s": len(gold) / elapsed, "seconds": elapsed,
            "predicted": sum(len(p.ents) for p in predicted), "gold": sum(len(g.ents) for g in gold)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", choices=sorted(WNUT), default="test", help="WNUT-17 split (tune levers on dev)")
    parser.add_argument("--distil-only", action="store_true", help="skip the spacy-llm baseline (no RESULT lines)")
    parser.add_argument("--task", type=json.loads, default={}, help="JSON settings merged into distil.NER.v1")
    parser.add_argument("--model", type=json.loads, default={}, help="JSON settings merged into distil.LlamaCpp.v1")
    args = parser.parse_args()
    nlp0 = spacy.blank("en")
    gold = list(read_conll(WNUT[args.split], nlp0.vocab, ConversionReport()))[: args.docs]
    labels = label_descriptions()
    results = {}
    if args.distil_only:
        ours = distil_pipeline(labels, args.threads, args.task, args.model)
        r = evaluate(ours, gold)
        usage = collect_usage(ours)["ner"]
        print(f"{args.docs} WNUT-17 {args.split} sentences, distil.NER.v1 task {args.task} model {args.model}")
        print(f"  P {r['p']:.3f} R {r['r']:.3f} F1 {r['f1']:.3f}  {r['docs_per_s']:.2f} docs/s  "
              f"predicted {r['predicted']} gold {r['gold']}  mentions {usage.get('mentions', 0)} "
              f"ungrounded {usage.get('ungrounded', 0)} failures {usage.get('failures', {})}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        baseline = spacy_llm_pipeline(labels, args.threads, spacy_llm_examples(Path(tmp) / "examples.jsonl"))
        results["spacy-llm spacy.NER.v3"] = evaluate(baseline, gold)
        print("spacy-llm:", json.dumps(results["spacy-llm spacy.NER.v3"]), flush=True)
        print(f"  completion tokens {cast(Any, baseline.get_pipe('ner'))._model.completion_tokens}", flush=True)
    ours = distil_pipeline(labels, args.threads)
    results["distil.NER.v1"] = evaluate(ours, gold)
    print("distil:", json.dumps(results["distil.NER.v1"]), flush=True)
    print("distil usage:", json.dumps(collect_usage(ours)), flush=True)
    base, mine = results["spacy-llm spacy.NER.v3"], results["distil.NER.v1"]
    print(f"{args.docs} WNUT-17 {args.split} sentences, {args.threads} thread(s)")
    for name, r in results.items():
        print(f"  {name:24s} P {r['p']:.3f} R {r['r']:.3f} F1 {r['f1']:.3f}  {r['docs_per_s']:.2f} docs/s")
    print(f"RESULT f1_vs_spacy_llm={mine['f1'] / base['f1'] if base['f1'] else float('inf'):.2f}")
    print(f"RESULT docs_per_s_vs_spacy_llm={mine['docs_per_s'] / base['docs_per_s']:.2f}")


if __name__ == "__main__":
    main()
