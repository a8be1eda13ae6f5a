"""Derive the data-driven rule files in this folder from TRAIN splits only.

    python configs/rules/derive_rules.py --data ../shared/data [--check]

Writes ``banking77_textcat.jsonl`` (distinctive 1-3-grams per intent from the
BANKING77 train split) and ``wnut17_patterns.jsonl``: the hand-written
``wnut17_handwritten.jsonl`` followed by entity strings that are frequent and
unambiguous in the WNUT-17 train split (a string already in the hand-written
file keeps its hand-written label). The dev and
test splits are never read. ``--check`` instead derives BANKING77 rules from
80% of train and prints accuracy on the other 20% for a few settings (how the
defaults below were chosen).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import spacy
from spacy.lang.en.stop_words import STOP_WORDS

HERE = Path(__file__).parent


def ngrams(tokens: list[str], max_n: int = 3) -> set[str]:
    """Lower-cased 1..max_n-grams that contain at least one non-stopword alphabetic token."""
    out = set()
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            gram = tokens[i : i + n]
            if any(t.isalpha() and t not in STOP_WORDS for t in gram) and all(t.isalnum() or t == "'" for t in gram):
                out.add(" ".join(gram))
    return out


def banking_rules(rows: list[tuple[str, str]], min_df: int, min_precision: float, top_k: int) -> list[dict]:
    """Per intent, the n-grams with the best (document frequency x precision^2) among those that qualify."""
    tokenizer = spacy.blank("en").tokenizer
    per_label: dict[str, Counter[str]] = defaultdict(Counter)
    total: Counter[str] = Counter()
    for text, label in rows:
        grams = ngrams([t.lower_ for t in tokenizer(text)])
        per_label[label].update(grams)
        total.update(grams)
    rules = []
    for label in sorted(per_label):
        scored = []
        for gram, df in per_label[label].items():
            precision = df / total[gram]
            if df >= min_df and precision >= min_precision:
                scored.append((df * precision**2, gram, precision))
        for _, gram, precision in sorted(scored, reverse=True)[:top_k]:
            kind = "keyword" if " " not in gram else "phrase"
            rules.append({"label": label, kind: gram, "weight": round(precision, 2)})
    return rules


def read_banking(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as stream:
        return [(row["text"], row["category"]) for row in csv.DictReader(stream)]


def check(data: Path) -> None:
    from distil.components.rules.textcat import TextCatRule, TextCatRules
    from distil.schemas import make_textcat_schema

    rows = read_banking(data / "banking77" / "train.csv")
    random.Random(0).shuffle(rows)
    cut = int(len(rows) * 0.8)
    fit, held = rows[:cut], rows[cut:]
    labels = json.loads((data / "banking77" / "categories.json").read_text())
    nlp = spacy.blank("en")
    for min_df, min_precision, top_k in [(3, 0.5, 10), (3, 0.5, 20), (2, 0.4, 30), (3, 0.6, 30), (2, 0.5, 40)]:
        component = TextCatRules(nlp, "textcat", schema=make_textcat_schema(labels))
        component.add_rules(TextCatRule.model_validate(r) for r in banking_rules(fit, min_df, min_precision, top_k))
        correct = 0
        for text, label in held:
            scores = component.scores(nlp.make_doc(text))
            correct += max(scores, key=lambda k: scores[k]) == label and scores[label] > 0
        print(f"min_df={min_df} min_precision={min_precision} top_k={top_k}: rules={len(component.rules)} "
              f"held-out accuracy={correct / len(held):.3f}")


def wnut_gazetteer(path: Path, min_count: int) -> list[dict]:
    """Entity strings seen at least ``min_count`` times in train with one label, rarely tagged O."""
    mentions: dict[str, Counter[str]] = defaultdict(Counter)
    sentences: list[list[tuple[str, str]]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            sentences.append([])
            continue
        token, tag = line.split("\t")
        sentences[-1].append((token, tag))
    o_count: Counter[str] = Counter()
    for sentence in sentences:
        current: list[str] = []
        label = ""
        for token, tag in [*sentence, ("", "O")]:
            if tag.startswith("I-") and current:
                current.append(token)
                continue
            if current:
                mentions[" ".join(current)][label] += 1
                current = []
            if tag.startswith("B-"):
                current, label = [token], tag[2:]
            else:
                o_count[token] += 1
    out = []
    for text, labels in sorted(mentions.items()):
        label, count = labels.most_common(1)[0]
        if count >= min_count and count / sum(labels.values()) >= 0.8 and o_count[text] <= count // 2:
            out.append({"label": label, "pattern": text})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        check(args.data)
        return
    rules = banking_rules(read_banking(args.data / "banking77" / "train.csv"), min_df=2, min_precision=0.4, top_k=30)
    with (HERE / "banking77_textcat.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(rule, ensure_ascii=False) + "\n" for rule in rules)
    handwritten = [json.loads(line) for line in (HERE / "wnut17_handwritten.jsonl").read_text().splitlines() if line]
    known = {json.dumps(p["pattern"]) for p in handwritten}
    derived = wnut_gazetteer(args.data / "wnut17" / "wnut17train.conll", min_count=2)
    patterns = handwritten + [p for p in derived if json.dumps(p["pattern"]) not in known]
    with (HERE / "wnut17_patterns.jsonl").open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in patterns)
    print(f"{len(rules)} textcat rules, {len(patterns)} gazetteer patterns")


if __name__ == "__main__":
    main()
