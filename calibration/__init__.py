"""INT8, imported as ``lsa_edge.calibration``: decided on the desktop, on any CPU.

``dataset`` (calibration and validation faces from a data set or an image folder, through the one
preprocessing), ``quantize`` (ranges with ONNX Runtime, Q/DQ ONNX for TensorRT s8/s8 and for ONNX Runtime
u8/s8), ``cache`` (TensorRT's calibration cache text format), ``trt_calibrator`` (an on-device
IInt8EntropyCalibrator2 for TensorRT 8.5/10). Depends on the core; onnxruntime, tensorrt and the CUDA binding are
imported lazily.
"""
