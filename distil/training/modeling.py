"""The torch models: a Hugging Face token classifier (ner), a mean-pooled sequence classifier (textcat), and for rel an entity-marker pair classifier (``pairs``) or a one-pass classifier of every candidate pair (``one_pass``).

Text classification pools the mean of the token states rather than [CLS]:
the default base (all-MiniLM-L6-v2) is a sentence-embedding model trained with
mean pooling, so its mean-pooled output is a strong feature from the first step.

All three are wrapped in :class:`LogitsModel`, whose ``forward`` takes the
same named inputs as the exported ONNX graph and returns the logits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

HEAD = "task_head.pt"
HEAD_CONFIG = "task_head.json"
ARCHITECTURES = ("pairs", "one_pass")


class MarkerPairClassifier(nn.Module):
    """Encoder + linear layer over the hidden states at the head and tail opening markers."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_classes)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, head_index: torch.Tensor, tail_index: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[batch, classes]`` for each marked pair."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0])
        pair = torch.cat([hidden[rows, head_index], hidden[rows, tail_index]], dim=-1)
        return self.classifier(self.dropout(pair))  # type: ignore[no-any-return]


class OnePassPairClassifier(nn.Module):
    """Encoder run once per document window + an MLP over ``concat(head, tail, head * tail)`` per candidate pair.

    Every entity is marked in the input and read at its opening marker; a pair
    names the (window row, position) of its head and of its tail, so one batch
    of windows serves every candidate pair of its documents. The product term
    gives the classifier the interaction of the two states directly.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(
            nn.Linear(3 * hidden_size, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, num_classes)
        )

    @property
    def num_classes(self) -> int:
        """The number of output classes."""
        last: Any = self.classifier[-1]
        return int(last.out_features)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        head_row: torch.Tensor,
        head_index: torch.Tensor,
        tail_row: torch.Tensor,
        tail_index: torch.Tensor,
    ) -> torch.Tensor:
        """Logits ``[pairs, classes]``, one row per (head, tail) given."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        head = hidden[head_row, head_index]
        tail = hidden[tail_row, tail_index]
        pair = torch.cat([head, tail, head * tail], dim=-1)
        return self.classifier(self.dropout(pair))  # type: ignore[no-any-return]


class MeanPoolClassifier(nn.Module):
    """Encoder + linear layer over the mean of the (unpadded) token states."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, classes]``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))  # type: ignore[no-any-return]


class LogitsModel(nn.Module):
    """One interface over the three task models: named inputs in, logits out."""

    def __init__(self, task: str, inner: nn.Module, architecture: str = "pairs") -> None:
        super().__init__()
        self.task = task
        self.inner = inner
        self.architecture = architecture if task == "rel" else ""

    @property
    def input_names(self) -> list[str]:
        """The named inputs of ``forward``, in order: those of the exported graph."""
        return input_names(self.task, self.architecture)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *pair_inputs: torch.Tensor) -> torch.Tensor:
        """The logits: ``[batch, seq, classes]`` for ner, ``[pairs, classes]`` for rel, ``[batch, classes]`` for textcat.

        ``pair_inputs`` are the rel model's extra inputs after the two common
        ones, in :attr:`input_names` order.
        """
        if self.task == "rel":
            return self.inner(input_ids, attention_mask, *pair_inputs)  # type: ignore[no-any-return]
        if self.task == "textcat":
            return self.inner(input_ids, attention_mask)  # type: ignore[no-any-return]
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits  # type: ignore[no-any-return]

    @property
    def num_layers(self) -> int:
        """The number of transformer layers of the encoder (its config's ``num_hidden_layers``)."""
        return int(self.base_encoder().config.num_hidden_layers)

    def base_encoder(self) -> Any:
        """The bare pre-trained encoder (e.g. ``BertModel``) under the task layers."""
        inner: Any = self.inner
        return inner.base_model if self.task == "ner" else inner.encoder.base_model

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters of the task layer added on top of the pre-trained encoder."""
        inner: Any = self.inner
        head = inner.classifier if hasattr(inner, "classifier") else None
        return [] if head is None else list(head.parameters())

    def get_input_embeddings(self) -> nn.Module:
        """The encoder's word-embedding layer."""
        inner: Any = self.inner if self.task == "ner" else self.inner.encoder
        return inner.get_input_embeddings()  # type: ignore[no-any-return]

    def save(self, directory: Path) -> None:
        """Save as a Hugging Face model directory (plus the task head for textcat and rel)."""
        directory.mkdir(parents=True, exist_ok=True)
        inner: Any = self.inner
        if self.task == "ner":
            inner.save_pretrained(directory)
        else:
            inner.encoder.save_pretrained(directory)
            torch.save(inner.classifier.state_dict(), directory / HEAD)
            classes = inner.num_classes if isinstance(inner, OnePassPairClassifier) else inner.classifier.out_features
            config = {"num_classes": classes, "architecture": self.architecture or "pairs"}
            (directory / HEAD_CONFIG).write_text(json.dumps(config))


def _encoder(path: str | Path, attn: str) -> nn.Module:
    try:
        # The pooler is unused by the pair head; without it no weights go untrained.
        return AutoModel.from_pretrained(path, attn_implementation=attn, add_pooling_layer=False)  # type: ignore[no-any-return]
    except TypeError:  # encoders without a pooler option
        return AutoModel.from_pretrained(path, attn_implementation=attn)  # type: ignore[no-any-return]


def input_names(task: str, architecture: str = "pairs") -> list[str]:
    """The graph inputs of a task's model (for rel, of its architecture)."""
    names = ["input_ids", "attention_mask"]
    if task != "rel":
        return names
    if architecture == "one_pass":
        return [*names, "head_row", "head_index", "tail_row", "tail_index"]
    return [*names, "head_index", "tail_index"]


def _head_class(task: str, architecture: str) -> type[nn.Module]:
    if task == "textcat":
        return MeanPoolClassifier
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown relation architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")
    return OnePassPairClassifier if architecture == "one_pass" else MarkerPairClassifier


def keep_layers(encoder: Any, layers: int) -> None:
    """Keep the first ``layers`` transformer layers of a BERT-like encoder (``encoder.encoder.layer``), drop the rest.

    The config's ``num_hidden_layers`` follows, so the saved checkpoint
    reloads (and exports) with the smaller depth. The lower layers are kept
    because each layer was pre-trained on the output of the one below it;
    fine-tuning then teaches the shortened stack the task without the top.
    """
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList):
        raise ValueError(f"--layers needs a BERT-like encoder with encoder.layer; {type(encoder).__name__} has none")
    if not 1 <= layers <= len(stack):
        raise ValueError(f"--layers must be between 1 and the base model's {len(stack)} layers, got {layers}")
    encoder.encoder.layer = nn.ModuleList(list(stack)[:layers])
    encoder.config.num_hidden_layers = layers


def build_model(
    task: str,
    base: str,
    classes: list[str],
    exclusive: bool = True,
    attn: str = "eager",
    architecture: str = "pairs",
    layers: Optional[int] = None,
) -> LogitsModel:
    """A fresh task model on top of the base encoder at ``base`` (a local directory).

    ``architecture`` picks the relation model: ``pairs`` (one marked input per
    candidate pair) or ``one_pass`` (one input per document, every pair
    classified from the entity states). ``layers`` keeps only the first
    ``layers`` transformer layers of the base (:func:`keep_layers`); ``None``
    keeps them all.
    """
    id2label = dict(enumerate(classes))
    label2id = {name: k for k, name in id2label.items()}
    if task == "ner":
        inner = AutoModelForTokenClassification.from_pretrained(
            base, num_labels=len(classes), id2label=id2label, label2id=label2id, attn_implementation=attn
        )
    else:
        config = AutoConfig.from_pretrained(base)
        encoder = _encoder(base, attn)
        head_cls = _head_class(task, architecture)
        inner = head_cls(encoder, config.hidden_size, len(classes), config.hidden_dropout_prob)
    model = LogitsModel(task, inner, architecture)
    if layers is not None:
        keep_layers(model.base_encoder(), layers)
    return model


def load_model(task: str, directory: Path, attn: str = "eager") -> LogitsModel:
    """Load a model saved by :meth:`LogitsModel.save`."""
    if task == "ner":
        return LogitsModel(task, AutoModelForTokenClassification.from_pretrained(directory, attn_implementation=attn))
    head = json.loads((directory / HEAD_CONFIG).read_text())
    config = AutoConfig.from_pretrained(directory)
    encoder = _encoder(directory, attn)
    # Checkpoints from before the one-pass model have no architecture: they are per-pair models.
    architecture = str(head.get("architecture", "pairs"))
    head_cls = _head_class(task, architecture)
    model: Any = head_cls(encoder, config.hidden_size, int(head["num_classes"]))
    model.classifier.load_state_dict(torch.load(directory / HEAD, weights_only=True))
    return LogitsModel(task, model, architecture)
