"""Fine-tuning and ONNX export of the encoder components: the only part of distil that imports torch.

Install with the ``train`` extra (``pip install torch==2.13.0`` first, then
``pip install distil[train]``). Entry points: :func:`distil.components.encoder.train.loop.train`
and :func:`distil.components.encoder.train.export.export_model_dir`.
"""
