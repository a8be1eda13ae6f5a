"""Does `distil compare` give the same pipeline the same speed in any list position? Side by side, in one run.

Runs ``distil compare`` on the same rules pipeline listed three times
(``a=``, ``b=``, ``c=``, one config) on a seeded sample of WNUT-17 test
documents, ``--rounds`` times, each round in a fresh process as a user would
run it. Each position's docs/s is divided by the mean of its round (the load of
a shared machine changes between rounds by 2x; that is not a position effect),
the median over the rounds is taken per position, and the spread max/min
across positions is reported: 1.0 means the position does not matter; the
target is 1.15 or less. For comparison it also
times the old method (one untimed-warm pass per pipeline: no warm-up, no
repeats) the same way, through ``distil.pipeline.compare.compare_one``.

    python bench/compare_position.py [--data ../shared/data] [--limit 200] [--rounds 3] \
        [--config configs/ner_rules.cfg]

Ends with ``RESULT compare_position_spread=<max/min>`` (and
``RESULT compare_position_spread_old_method=<max/min>``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DISTIL = [sys.executable, "-m", "distil"]
POSITIONS = ("a", "b", "c")

# The old method, run in a fresh process like the CLI: each pipeline loaded and timed in list order with one
# pass and no warm-up, as `distil compare` did before issue 17.
OLD_METHOD = """
import json, sys
import spacy
from distil.pipeline.compare import compare_one
from distil.pipeline.config import load_pipeline
from distil.corpus import read_docs
from distil.pipeline.sample import take_sample
gold, config, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
golds = take_sample(list(read_docs(gold, spacy.blank("en"))), limit, seed=0)
speeds = {}
for name in ("a", "b", "c"):
    rows, _ = compare_one(name, load_pipeline(config), golds, latency_docs=20, repeats=1, warmup_docs=0,
                          min_run_seconds=0.0)
    speeds[name] = rows[0].docs_per_second
print(json.dumps(speeds))
"""


def compare_round(gold: Path, config: str, limit: int, out: Path) -> dict[str, float]:
    """docs/s per list position from one ``distil compare`` process."""
    subprocess.run(
        [*DISTIL, "compare", "--gold", str(gold), "--output", str(out), "--limit", str(limit),
         *(f"{name}={config}" for name in POSITIONS)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
    )
    rows = json.loads((out / "compare.json").read_text(encoding="utf-8"))["rows"]
    return {row["pipeline"]: float(row["docs_per_second"]) for row in rows}


def old_round(gold: Path, config: str, limit: int) -> dict[str, float]:
    """docs/s per list position with the old method, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", OLD_METHOD, str(gold), config, str(limit)],
        check=True, capture_output=True, text=True, cwd=REPO,
    )
    return {name: float(value) for name, value in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def spread(rounds: list[dict[str, float]]) -> tuple[float, dict[str, float]]:
    """max/min over positions of the per-position median of docs/s relative to its round's mean, and those medians."""
    relative = [{name: r[name] / statistics.mean(r.values()) for name in POSITIONS} for r in rounds]
    medians = {name: statistics.median(r[name] for r in relative) for name in POSITIONS}
    return max(medians.values()) / min(medians.values()), medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--config", default="configs/ner_rules.cfg")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gold = work / "wnut_test.spacy"
        subprocess.run(
            [*DISTIL, "convert", str(args.data / "wnut17" / "emerging.test.annotated"), str(gold), "--format", "conll"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
        )
        new_rounds, old_rounds = [], []
        for i in range(args.rounds):
            # Interleaved, so a change in the machine's load hits both methods alike.
            new_rounds.append(compare_round(gold, args.config, args.limit, work / f"cmp{i}"))
            old_rounds.append(old_round(gold, args.config, args.limit))
            print(f"round {i + 1}: compare " + " ".join(f"{n}={new_rounds[-1][n]:,.0f}" for n in POSITIONS)
                  + " docs/s | old method " + " ".join(f"{n}={old_rounds[-1][n]:,.0f}" for n in POSITIONS))
    new_spread, new_medians = spread(new_rounds)
    old_spread, old_medians = spread(old_rounds)
    print("median docs/s relative to the round's mean, by position, compare: "
          + ", ".join(f"{n} {v:.3f}" for n, v in new_medians.items()))
    print("median docs/s relative to the round's mean, by position, old method: "
          + ", ".join(f"{n} {v:.3f}" for n, v in old_medians.items()))
    print(f"target: spread <= 1.15 ({'met' if new_spread <= 1.15 else 'MISSED'})")
    print(f"RESULT compare_position_spread={new_spread:.3f}")
    print(f"RESULT compare_position_spread_old_method={old_spread:.3f}")


if __name__ == "__main__":
    main()
