"""The build stage, imported as ``lsa_edge.engines``: checkpoint → ONNX → FP16 / Q/DQ INT8 → TensorRT engines.

One module per step: ``export`` (checkpoint → FP32 ONNX, parity-checked), ``fp16`` (FP16 ONNX for
strongly typed TensorRT), ``accuracy`` (the gate against FP32), ``build`` (``lsa-edge build``: chains the
typed steps of ``steps`` and ``reduce``, then ``manifest_writer``; ``config`` holds BuildConfig, ``trtexec`` the
device commands, ``deploy`` DEPLOY.md, ``from_bundle`` the on-device build), ``tensorrt`` (the thin TensorRT builder for 8.5/10/11), ``lint``
(``lsa-edge check``), ``compare`` (``lsa-edge compare``), ``detector`` (BlazeFace .tflite → ONNX),
``triton_repo`` and ``deepstream`` (``lsa-edge export triton|deepstream``, reading packages through ``serving``).
INT8 calibration lives in ``lsa_edge.calibration``. Depends on the core; torch, onnx, onnxruntime and
tensorrt are imported when a step needs them.
"""
