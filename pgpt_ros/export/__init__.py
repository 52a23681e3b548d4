"""Export of the ``<vis>`` heads to ONNX, TensorRT engine builds and the engine cache.

``pgpt-export MODEL_DIR`` (``cli.py``) writes the ONNX graphs and their manifest; the runtime
(``pgpt_ros.runtime.heads``) exports on demand and builds engines through ``engine_cache``.
"""
