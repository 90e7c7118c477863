"""The build stage, imported as ``lsa_edge.engines``: ONNX export, simplification and TensorRT engines.

Depends on the ``lsa_edge`` core and on torch/onnx/onnxruntime (imported lazily). So far: ``export``
(checkpoint → ONNX with parity check and the model card). Precision, TensorRT engines and the
``lsa-edge build`` command come with the build issue.
"""
