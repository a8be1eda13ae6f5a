"""The torch models: Hugging Face token/sequence classifiers, and an entity-marker pair classifier.

All three are wrapped in :class:`LogitsModel`, whose ``forward`` takes the
same named inputs as the exported ONNX graph and returns the logits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification

REL_HEAD = "rel_head.pt"
REL_CONFIG = "rel_head.json"


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


class LogitsModel(nn.Module):
    """One interface over the three task models: named inputs in, logits out."""

    def __init__(self, task: str, inner: nn.Module) -> None:
        super().__init__()
        self.task = task
        self.inner = inner

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        head_index: Optional[torch.Tensor] = None,
        tail_index: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """The logits: ``[batch, seq, classes]`` for ner, ``[batch, classes]`` otherwise."""
        if self.task == "rel":
            assert head_index is not None and tail_index is not None
            return self.inner(input_ids, attention_mask, head_index, tail_index)  # type: ignore[no-any-return]
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits  # type: ignore[no-any-return]

    def get_input_embeddings(self) -> nn.Module:
        """The encoder's word-embedding layer."""
        inner: Any = self.inner.encoder if self.task == "rel" else self.inner
        return inner.get_input_embeddings()  # type: ignore[no-any-return]

    def save(self, directory: Path) -> None:
        """Save as a Hugging Face model directory (plus the pair head for rel)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.task == "rel":
            inner: MarkerPairClassifier = self.inner  # type: ignore[assignment]
            inner.encoder.save_pretrained(directory)  # type: ignore[operator]
            torch.save(inner.classifier.state_dict(), directory / REL_HEAD)
            (directory / REL_CONFIG).write_text(json.dumps({"num_classes": inner.classifier.out_features}))
        else:
            self.inner.save_pretrained(directory)  # type: ignore[operator]


def _encoder(path: str | Path, attn: str) -> nn.Module:
    try:
        # The pooler is unused by the pair head; without it no weights go untrained.
        return AutoModel.from_pretrained(path, attn_implementation=attn, add_pooling_layer=False)  # type: ignore[no-any-return]
    except TypeError:  # encoders without a pooler option
        return AutoModel.from_pretrained(path, attn_implementation=attn)  # type: ignore[no-any-return]


def build_model(task: str, base: str, classes: list[str], exclusive: bool = True, attn: str = "eager") -> LogitsModel:
    """A fresh task model on top of the base encoder at ``base`` (a local directory)."""
    id2label = dict(enumerate(classes))
    label2id = {name: k for k, name in id2label.items()}
    if task == "ner":
        inner = AutoModelForTokenClassification.from_pretrained(
            base, num_labels=len(classes), id2label=id2label, label2id=label2id, attn_implementation=attn
        )
    elif task == "textcat":
        inner = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(classes),
            id2label=id2label,
            label2id=label2id,
            problem_type="single_label_classification" if exclusive else "multi_label_classification",
            attn_implementation=attn,
        )
    else:
        config = AutoConfig.from_pretrained(base)
        encoder = _encoder(base, attn)
        inner = MarkerPairClassifier(encoder, config.hidden_size, len(classes), config.hidden_dropout_prob)
    return LogitsModel(task, inner)


def load_model(task: str, directory: Path, attn: str = "eager") -> LogitsModel:
    """Load a model saved by :meth:`LogitsModel.save`."""
    if task == "ner":
        return LogitsModel(task, AutoModelForTokenClassification.from_pretrained(directory, attn_implementation=attn))
    if task == "textcat":
        return LogitsModel(task, AutoModelForSequenceClassification.from_pretrained(directory, attn_implementation=attn))
    head = json.loads((directory / REL_CONFIG).read_text())
    config = AutoConfig.from_pretrained(directory)
    encoder = _encoder(directory, attn)
    model = MarkerPairClassifier(encoder, config.hidden_size, int(head["num_classes"]))
    model.classifier.load_state_dict(torch.load(directory / REL_HEAD, weights_only=True))
    return LogitsModel(task, model)
