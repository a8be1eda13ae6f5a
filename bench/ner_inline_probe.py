"""Probe (a lever that failed): NER as inline tagging of the copied text, under a per-document grammar.

The model rewrites the sentence with entities marked as ``[Hillary Clinton](person)``.
A grammar built for each document (GBNF, two rules per token: outside or
inside a mention) lets it only copy the text and insert well-formed marks,
so every mention is grounded by construction and the model cannot copy names
from the few-shot examples. Same two examples, labels and model as
``bench/llm_quality.py``; greedy decoding, ``--bias`` is added to the logits of
every token that starts with ``[`` (the model's will to open a mention).
Entity-level micro P/R/F1 on the first N WNUT-17 sentences.

    .venv/bin/python bench/ner_inline_probe.py --split dev --docs 100 --bias 3

Measured 2026-11-26 on 15 dev sentences (docs/benchmarks.md): greedy marks
one span, and no correct one (F1 0.0); a bias of +3 marks 15, none correct;
+6 marks 121 (F1 0.015). The base model gives no useful signal for "a
mention starts here", so this format stays a probe.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import spacy  # noqa: E402
from llama_cpp import Llama, LlamaGrammar  # noqa: E402
from llm_quality import EXAMPLES, WNUT, entity_prf, label_descriptions  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from distil.annotations import EntityPrediction, write_entities  # noqa: E402
from distil.components.llm.examples import load_examples  # noqa: E402
from distil.components.llm.grounding import ground  # noqa: E402
from distil.components.llm.models.gguf import default_model_path  # noqa: E402
from distil.components.llm.models.lazy_grammar import greedy_with_grammar  # noqa: E402
from distil.pipeline.io.conll import read_conll  # noqa: E402
from distil.pipeline.io.conversion_report import ConversionReport  # noqa: E402


def tagged(doc: Doc) -> str:
    """The doc's text with its entities marked inline."""
    out, pos = [], 0
    for ent in doc.ents:
        out += [doc.text[pos : ent.start_char], f"[{ent.text}]({ent.label_})"]
        pos = ent.end_char
    return "".join(out) + doc.text[pos:]


def copy_grammar(doc: Doc, labels: list[str]) -> str:
    """GBNF that admits the doc's text with marks inserted at token boundaries, then a newline."""
    q = json.dumps
    tokens = list(doc)
    rules = ["root ::= o0", "lab ::= " + " | ".join(q(x) for x in labels), f'o{len(tokens)} ::= "\\n"']
    for i, t in enumerate(tokens):
        rules.append(f'o{i} ::= {q(t.text)} {q(t.whitespace_)} o{i + 1} | "[" {q(t.text)} c{i}')
        close = f'"](" lab ")" {q(t.whitespace_)} o{i + 1}'
        extend = f" | {q(t.whitespace_)} {q(tokens[i + 1].text)} c{i + 1}" if i + 1 < len(tokens) else ""
        rules.append(f"c{i} ::= {close}{extend}")
    return "\n".join(rules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--split", choices=sorted(WNUT), default="dev")
    parser.add_argument("--bias", type=float, default=0.0, help="added to the logits of tokens starting with '['")
    parser.add_argument("--show", action="store_true", help="print each tagged answer")
    args = parser.parse_args()
    gold = list(read_conll(WNUT[args.split], spacy.blank("en").vocab, ConversionReport()))[: args.docs]
    labels = label_descriptions()
    names = list(labels)
    prefix = "Mark the named entities in each text as [entity](type).\nEntity types:\n"
    prefix += "".join(f"- {name}: {description}\n" for name, description in labels.items()) + "\n"
    prefix += "".join(f"Text: {ex.text}\nTagged: {tagged(ex)}\n\n" for ex in load_examples(EXAMPLES))
    llm = Llama(model_path=str(default_model_path()), n_ctx=2048, n_threads=1, n_threads_batch=1, n_batch=256,
                seed=0, verbose=False)
    opens = [i for i in range(llm.n_vocab()) if llm.detokenize([i]).decode("utf-8", "replace").lstrip(" ").startswith("[")]
    bias = dict.fromkeys(opens, args.bias) if args.bias else None
    mark = re.compile(r"\[([^\]]*)\]\((" + "|".join(map(re.escape, names)) + r")\)")
    started = time.perf_counter()
    generated = 0
    pairs: list[tuple[Doc, Doc]] = []
    for doc in gold:
        grammar = LlamaGrammar.from_string(copy_grammar(doc, names), verbose=False)
        text, _, n = greedy_with_grammar(llm, prefix + f"Text: {doc.text}\nTagged: ", grammar, 400, logit_bias=bias)
        generated += n
        # Offsets in the plain text: each earlier mark shortens the text by its markup.
        predicted: set[tuple[int, int, str]] = set()
        removed = 0
        for m in mark.finditer(text):
            start = m.start() - removed
            removed += len(m.group(0)) - len(m.group(1))
            if doc.text[start : start + len(m.group(1))] != m.group(1):
                # llama.cpp can emit an emoji as other bytes, which shifts later offsets: search instead
                found = ground(m.group(1), doc.text)
                if not found:
                    continue
                start = found[0][0]
            predicted.add((start, start + len(m.group(1)), m.group(2)))
        # The predictions on a copy of the gold tokens, written by the canonical writer and scored as evaluate does.
        answer = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        write_entities(answer, [EntityPrediction(*mention) for mention in sorted(predicted)], overlap="longest")
        pairs.append((answer, doc))
        if args.show:
            print(text.rstrip())
    elapsed = time.perf_counter() - started
    p, r, f1 = entity_prf(pairs)
    n_pred = sum(len(answer.ents) for answer, _ in pairs)
    n_gold = sum(len(doc.ents) for doc in gold)
    print(f"{args.docs} WNUT-17 {args.split} sentences, bias {args.bias}: P {p:.3f} R {r:.3f} F1 {f1:.3f} "
          f"predicted {n_pred} gold {n_gold} {args.docs / elapsed:.2f} docs/s, {generated} generated tokens")
    print(f"RESULT inline_f1={f1:.3f}")


if __name__ == "__main__":
    main()
