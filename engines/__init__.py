"""The build stage, imported as ``lsa_edge.engines``: ONNX export, simplification and TensorRT engines.

Depends on the ``lsa_edge`` core and on onnx/onnxruntime/tensorrt, imported lazily. The export and
engine builders arrive with the build issue (``lsa-edge build``); nothing is exposed yet.
"""
