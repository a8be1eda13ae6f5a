"""Fine-tuning and ONNX export of the encoder models: the only part of distil that imports torch.

Training sits beside the components, not inside the encoder backend it feeds:
:mod:`distil.components.encoder` runs exported models with onnxruntime alone,
and importing it never imports torch. Training reuses that backend's encoding
and annotate code (so dev predictions run the runtime's code), reads corpora
through :mod:`distil.corpus` and scores with :mod:`distil.scoring`, the scorer
``distil evaluate`` uses.

Install with the ``train`` extra (``pip install torch==2.13.0`` first, then
``pip install distil[train]``). Entry points: :func:`distil.training.loop.train`
(``distil train``) and :func:`distil.training.export.export_model_dir`
(``distil export``).
"""
