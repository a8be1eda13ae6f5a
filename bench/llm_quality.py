"""The embedded teacher on all three tasks: static against retrieved examples, a kNN baseline, and spacy-llm.

For each task the shipped LLM config (``configs/ner_llm.cfg``,
``configs/textcat_llm.cfg``, ``configs/rel_llm.cfg``: the packaged Gemma 3
270M, llama.cpp in process) runs on a seeded random sample of N test
documents (plus one warm-up document, not scored) with its answer cache off,
in two variants:

- ``retrieved`` (the shipped default): few-shot examples retrieved per
  document by ``distil.RetrievedExamples.v1`` from the bundled seed pool of
  gold *train* documents (10 per intent for BANKING77, 200 sentences for
  WNUT-17 and for SemEval: ``tools/seed_pools.py``), with the shortlist the
  config sets;
- ``static``: the same config with ``--components.X.task.examples`` set to the
  few shipped static examples (what every document saw before).

Scores come from ``distil.pipeline.evaluate.evaluate``, the function behind
``distil evaluate``: WNUT-17 entity micro-F1, BANKING77 accuracy, SemEval
official macro-F1 (9 directed types, Other excluded), each on the same
documents. The non-LLM baseline is a **kNN vote** over the same pool with the
same MiniLM embeddings (k = 5, weighted by similarity): per task, the
majority intent; the SemEval answer (type and direction) of the nearest
sentences; for NER, the pool's entity strings found again in the document
(every pool sentence votes for a string's label, weighted by similarity). For NER, spacy-llm's ``spacy.NER.v3`` runs the same model
with the static examples (the baseline of earlier runs).

    .venv/bin/python bench/llm_quality.py [--docs 200] [--threads 1] [--tasks ner,textcat,rel] [--no-spacy-llm]

Levers are tried on a dev split with settings overridden as JSON, e.g.:

    .venv/bin/python bench/llm_quality.py --split dev --docs 100 --tasks ner --variants retrieved \\
        --override '{"components.ner.task.examples.k": 6}'

The default run ends with (percent, and one ratio over all three tasks' documents)::

    RESULT teacher_ner_f1=...  RESULT teacher_textcat_accuracy=...  RESULT teacher_rel_macro_f1=...
    RESULT teacher_docs_per_s_vs_static=...

plus ``static_*``, ``knn_*`` and the spacy-llm ratios. Never run it beside a
torch training: both want the two cores.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, cast  # noqa: UP035 - spacy-llm inspects typing generics

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import spacy  # noqa: E402
from llama_cpp import Llama  # noqa: E402
from llama_cpp.llama_types import CreateCompletionResponse  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.tokens import Doc, Span  # noqa: E402
from spacy_llm.registry import registry  # noqa: E402

from distil.annotations import RelationPrediction, write_relations  # noqa: E402
from distil.components.llm.examples import load_examples  # noqa: E402
from distil.components.llm.models.gguf import default_model_path  # noqa: E402
from distil.components.llm.retrieval import RetrievedExamples, make_retrieved_examples, normalise_text  # noqa: E402
from distil.corpus import read_docs  # noqa: E402
from distil.pipeline.config import load_pipeline, read_config  # noqa: E402
from distil.pipeline.evaluate import evaluate  # noqa: E402
from distil.pipeline.io.convert import convert  # noqa: E402
from distil.pipeline.usage import collect_usage  # noqa: E402
from distil.scoring import score_categories, score_entities  # noqa: E402
from distil.scoring.semeval import directed_label, score_semeval, semeval_answers  # noqa: E402

DATA = REPO.parent / "shared" / "data"
# per task: the shipped config, its test and dev files, and the headline score key in evaluate's report
TASKS: dict[str, dict[str, Any]] = {
    "ner": {"config": "ner_llm.cfg", "test": "wnut17/emerging.test.annotated", "dev": "wnut17/emerging.dev.conll",
            "score": "ents_f", "result": "teacher_ner_f1", "what": "WNUT-17 entity F1"},
    "textcat": {"config": "textcat_llm.cfg", "test": "banking77/test.csv", "dev": "banking77/train.csv",
                "score": "cats_accuracy", "result": "teacher_textcat_accuracy", "what": "BANKING77 accuracy"},
    "rel": {"config": "rel_llm.cfg", "test": "semeval2010_task8/TEST_FILE_FULL.TXT",
            "dev": "semeval2010_task8/TRAIN_FILE.TXT",
            "score": "rel_semeval_macro_f", "result": "teacher_rel_macro_f1", "what": "SemEval official macro-F1"},
}
KNN_K = 5
# the WNUT-17 files and static examples bench/ner_inline_probe.py shares
WNUT = {split: DATA / TASKS["ner"][split] for split in ("test", "dev")}
EXAMPLES = "distil:ner_wnut17.jsonl"


def label_descriptions() -> dict[str, str]:
    """The NER labels and descriptions of the shipped NER config."""
    return dict(read_config(REPO / "configs" / TASKS["ner"]["config"])["schemas"]["ner"]["labels"])


def entity_prf(pairs: Iterable[tuple[Doc, Doc]]) -> tuple[float, float, float]:
    """Micro P, R and F1 of ``(predicted, gold)`` Doc pairs as ``distil evaluate`` scores them (0.0 where undefined)."""
    scores = score_entities(pairs)
    return scores["ents_p"] or 0.0, scores["ents_r"] or 0.0, scores["ents_f"] or 0.0


# --- the spacy-llm baseline (NER): a minimal spacy-llm model around the same llama.cpp completion call ---


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


def spacy_llm_pipeline(config: Path, threads: int, tmp: Path) -> Language:
    """spacy.NER.v3 with the shipped NER config's labels, descriptions and static examples."""
    cfg = read_config(config)
    labels = label_descriptions()
    rows = [{"text": doc.text, "spans": [{"text": e.text, "is_entity": True, "label": e.label_,
                                          "reason": f"is a {e.label_}"} for e in doc.ents]}
            for doc in load_examples(cfg["paths"]["ner_examples"])]
    examples = tmp / "spacy_llm_examples.jsonl"
    examples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    nlp = spacy.blank("en")
    nlp.add_pipe("llm", name="ner", config={
        "task": {"@llm_tasks": "spacy.NER.v3", "labels": list(labels), "label_definitions": labels,
                 "examples": {"@misc": "spacy.FewShotReader.v1", "path": str(examples)}},
        "model": {"@llm_models": "bench.LlamaCppText.v1", "n_threads": threads, "n_ctx": 2048},
    })
    return nlp


def spacy_llm_scores(nlp: Language, gold: list[Doc]) -> dict[str, Any]:
    nlp(gold[0].text)
    started = time.perf_counter()
    predicted = [nlp(doc.text) for doc in gold[1:]]
    elapsed = time.perf_counter() - started
    return {"score": 100 * entity_prf(zip(predicted, gold[1:], strict=True))[2], "docs_per_s": len(predicted) / elapsed}


# --- data and the two teacher variants ---


def gold_sample(task: str, split: str, docs: int, seed: int, tmp: Path) -> list[Doc]:
    """A seeded random sample of ``docs + 1`` gold documents (the first is the warm-up)."""
    relative = TASKS[task][split]
    if relative is None:
        raise SystemExit(f"{task} has no {split} split here; use --split test")
    out = tmp / f"{task}-{split}.spacy"
    convert(DATA / relative, out)
    every = list(read_docs(out, spacy.blank("en")))
    return random.Random(seed).sample(every, docs + 1)


def teacher(task: str, variant: str, threads: int, override: dict[str, Any]) -> Language:
    """The shipped LLM config of ``task`` with its answer cache off; ``static`` swaps in the static examples."""
    overrides: dict[str, Any] = {"llm.cache": False, "llm.n_threads": threads, **override}
    if variant == "static":
        overrides[f"components.{task}.task.examples"] = f"${{paths.{task}_examples}}"
        if task in ("textcat", "rel"):  # a shortlist ranks labels from retrieved examples: none with static ones
            overrides[f"components.{task}.task.shortlist"] = None
    return load_pipeline(REPO / "configs" / TASKS[task]["config"], overrides)


def teacher_scores(nlp: Language, task: str, gold: list[Doc]) -> dict[str, Any]:
    """Score one teacher variant with ``distil evaluate``'s function after one untimed warm-up document."""
    nlp(gold[0].text)  # load the model, embed the pool (cached on disk), compile the first grammar
    report = evaluate(nlp, gold[1:], semeval_official=task == "rel", response_cache=False)
    usage = collect_usage(nlp).get(task, {})
    return {"score": 100 * float(report.scores.get(TASKS[task]["score"]) or 0.0),
            "docs_per_s": float(report.speed.get("docs_per_second") or 0.0),
            "seconds": float(report.speed.get("seconds") or 0.0), "failures": dict(report.failures),
            "prompt_tokens": usage.get("prompt_tokens", 0)}


# --- the kNN vote over the same pool and embeddings ---


def pool_selector(task: str, cache_dir: Path) -> RetrievedExamples:
    pool = read_config(REPO / "configs" / TASKS[task]["config"])["paths"][f"{task}_pool"]
    return make_retrieved_examples(pool=pool, k=KNN_K, cache_dir=str(cache_dir))


def neighbours(selector: RetrievedExamples, docs: list[Doc], k: int = KNN_K) -> list[list[tuple[int, float]]]:
    """For each document, its ``k`` nearest pool documents (index, cosine similarity), own text excluded."""
    matrix = selector.pool_embeddings()
    texts = [normalise_text(doc.text) for doc in docs]
    pool_texts = [normalise_text(doc.text) for doc in selector.docs]
    out = []
    for text, row in zip(texts, selector.embedder.embed(texts) @ matrix.T, strict=True):
        order = [int(i) for i in np.argsort(-row) if pool_texts[int(i)] != text][:k]
        out.append([(i, float(row[i])) for i in order])
    return out


def knn_textcat(selector: RetrievedExamples, gold: list[Doc], labels: list[str]) -> float:
    nlp = spacy.blank("en")
    pairs = []
    for doc, near in zip(gold, neighbours(selector, gold), strict=True):
        votes: defaultdict[str, float] = defaultdict(float)
        for index, sim in near:
            cats = selector.docs[index].cats
            votes[max(cats, key=cats.__getitem__)] += sim
        best = max(votes, key=votes.__getitem__)
        guess = nlp.make_doc(doc.text)
        guess.cats = {label: float(label == best) for label in labels}
        pairs.append((guess, doc))
    return 100 * float(score_categories(pairs, labels=labels, exclusive=True)["cats_accuracy"] or 0.0)


def knn_ner(selector: RetrievedExamples, gold: list[Doc]) -> float:
    """The pool's entity strings found again (case-insensitively, whole tokens) in the text, as a gazetteer.

    Every pool sentence votes (the 5 nearest alone almost never share a
    mention with a tweet: F1 0.0 on 80 dev sentences); a string takes the
    label with the largest similarity-weighted vote.
    """
    nlp = spacy.blank("en")
    pairs = []
    for doc, near in zip(gold, neighbours(selector, gold, k=len(selector.docs)), strict=True):
        votes: defaultdict[tuple[str, str], float] = defaultdict(float)
        for index, sim in near:
            for ent in selector.docs[index].ents:
                votes[(ent.text.lower(), ent.label_)] += max(sim, 1e-6)
        best: dict[str, tuple[float, str]] = {}
        for (text, label), weight in votes.items():
            if weight > best.get(text, (0.0, ""))[0]:
                best[text] = (weight, label)
        guess = nlp.make_doc(doc.text)
        words = [t.text.lower() for t in guess]
        spans: list[Span] = []
        taken: set[int] = set()
        for text in sorted(best, key=lambda t: -len(t.split())):  # longest mentions first, no overlaps
            target = [t.text.lower() for t in nlp.make_doc(text)]
            for start in range(len(words) - len(target) + 1):
                end = start + len(target)
                if words[start:end] == target and not taken & set(range(start, end)):
                    spans.append(Span(guess, start, end, label=best[text][1]))
                    taken |= set(range(start, end))
        guess.ents = sorted(spans, key=lambda s: s.start)
        pairs.append((guess, doc))
    return 100 * entity_prf(pairs)[2]


def knn_rel(selector: RetrievedExamples, gold: list[Doc]) -> float:
    """The SemEval answer (type and direction) of the nearest pool sentences, weighted by similarity."""
    pairs = []
    for doc, near in zip(gold, neighbours(selector, gold), strict=True):
        votes: defaultdict[str, float] = defaultdict(float)
        for index, sim in near:
            example = selector.docs[index]
            e1, e2 = sorted(example.ents, key=lambda e: e.start_char)[:2]
            votes[directed_label(example, (e1.start_char, e1.end_char), (e2.start_char, e2.end_char))] += sim
        answer = max(votes, key=votes.__getitem__)
        guess = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        guess.ents = [Span(guess, e.start, e.end, label=e.label_) for e in doc.ents]
        if answer != "Other":
            label, direction = answer[:-7], answer[-7:]
            order = sorted(range(len(guess.ents)), key=lambda i: guess.ents[i].start_char)
            head, tail = (order[0], order[1]) if direction == "(e1,e2)" else (order[1], order[0])
            write_relations(guess, [RelationPrediction(head, tail, label)])
        pairs.append((guess, doc))
    answers, _ = semeval_answers(pairs)
    return 100 * float(score_semeval(answers)["rel_semeval_macro_f"] or 0.0)


def knn_score(task: str, gold: list[Doc], cache_dir: Path) -> float:
    selector = pool_selector(task, cache_dir)
    if task == "textcat":
        labels = list(read_config(REPO / "configs" / TASKS[task]["config"])["schemas"]["textcat"]["labels"])
        return knn_textcat(selector, gold, labels)
    return knn_ner(selector, gold) if task == "ner" else knn_rel(selector, gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200, help="test documents per task (a seeded sample) + 1 warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["test", "dev"], default="test", help="dev: tune levers (WNUT-17 dev; a sample of the BANKING77 and SemEval train splits, where a pool document is never its own example)")
    parser.add_argument("--tasks", default="ner,textcat,rel")
    parser.add_argument("--variants", default="static,retrieved")
    parser.add_argument("--no-spacy-llm", action="store_true", help="skip the spacy-llm NER baseline")
    parser.add_argument("--override", type=json.loads, default={}, help="JSON config overrides for every teacher")
    args = parser.parse_args()
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    results: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for task in tasks:
            gold = gold_sample(task, args.split, args.docs, args.seed, tmp)
            print(f"== {task}: {args.docs} {args.split} documents (seed {args.seed}), {TASKS[task]['what']}, "
                  f"{args.threads} thread(s)", flush=True)
            results[task]["knn"] = {"score": knn_score(task, gold[1:], tmp / "embeddings")}
            print(f"  kNN vote (k={KNN_K}, the pool and embeddings retrieval uses)  {results[task]['knn']['score']:.1f}",
                  flush=True)
            if task == "ner" and not args.no_spacy_llm:
                results[task]["spacy-llm"] = spacy_llm_scores(
                    spacy_llm_pipeline(REPO / "configs" / TASKS[task]["config"], args.threads, tmp), gold)
                print(f"  spacy-llm spacy.NER.v3 (static examples)  {json.dumps(results[task]['spacy-llm'])}", flush=True)
            for variant in variants:
                results[task][variant] = teacher_scores(teacher(task, variant, args.threads, args.override), task, gold)
                print(f"  distil {variant:9s}  {json.dumps(results[task][variant])}", flush=True)
    print(json.dumps(results, indent=1))
    for task in tasks:
        row = results[task]
        if "retrieved" in row:
            print(f"RESULT {TASKS[task]['result']}={row['retrieved']['score']:.1f}")
        if "static" in row:
            print(f"RESULT static_{task}_{TASKS[task]['result'].split('_', 2)[2]}={row['static']['score']:.1f}")
        print(f"RESULT knn_{task}_{TASKS[task]['result'].split('_', 2)[2]}={row['knn']['score']:.1f}")
        if "retrieved" in row and "static" in row:
            print(f"RESULT {task}_docs_per_s_vs_static={row['retrieved']['docs_per_s'] / row['static']['docs_per_s']:.2f}")
    timed = [task for task in tasks if {"retrieved", "static"} <= set(results[task])]
    if timed:  # all documents of every task: total static seconds over total retrieved seconds
        ratio = sum(results[t]["static"]["seconds"] for t in timed) / sum(results[t]["retrieved"]["seconds"] for t in timed)
        print(f"RESULT teacher_docs_per_s_vs_static={ratio:.2f}")
    ner = results.get("ner", {})
    if "spacy-llm" in ner and "static" in ner:
        base, mine = ner["spacy-llm"], ner["static"]
        print(f"RESULT f1_vs_spacy_llm={mine['score'] / base['score'] if base['score'] else float('inf'):.2f}")
        print(f"RESULT docs_per_s_vs_spacy_llm={mine['docs_per_s'] / base['docs_per_s']:.2f}")


if __name__ == "__main__":
    main()
