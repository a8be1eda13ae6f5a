"""The encoder backend: fine-tuned transformers exported to ONNX and served with onnxruntime.

Inference only: the modules here (``ner``, ``textcat``, ``relations`` and what
they import) need only onnxruntime, tokenizers and numpy, never torch (a test
imports this package in a fresh interpreter and checks). Training and export
live in :mod:`distil.training`, the only place that imports torch and
transformers.
"""
