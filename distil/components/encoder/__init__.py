"""The encoder backend: fine-tuned transformers exported to ONNX and served with onnxruntime.

The runtime modules here (``ner``, ``textcat``, ``relations`` and what they
import) need only onnxruntime, tokenizers and numpy. Training and export live in
:mod:`distil.components.encoder.train`, the only place that imports torch and
transformers.
"""
