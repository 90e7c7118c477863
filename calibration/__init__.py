"""INT8 calibration, imported as ``lsa_edge.calibration``: calibration sets, Q/DQ quantization, caches.

Depends on the ``lsa_edge`` core (the same preprocessing as training and runtime). The calibrators
arrive with the build issue (``lsa-edge build --precision int8``); nothing is exposed yet.
"""
