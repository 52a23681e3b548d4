"""Export of the ``<vis>`` heads to ONNX: the graphs, their tensor names and their manifest.

``pgpt-export MODEL_DIR`` (``cli.py``) writes the ONNX graphs and their manifest; the runtime's
head backends (``pgpt_ros.runtime.backends``) export on demand and build TensorRT engines from the
same graphs. Nothing here depends on a runtime backend, except the CLI's parity check.
"""
