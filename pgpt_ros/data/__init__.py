"""Datasets as ``Sample`` records: ShapesRef (procedural) and RefCOCO-format annotations.

Nothing here imports torch: the demo camera and the metrics use the data without the model.
"""

from pgpt_ros.data.sample import Sample
from pgpt_ros.data.shapesref import SceneConfig, ShapesRef, commands_for

__all__ = ["Sample", "SceneConfig", "ShapesRef", "commands_for"]
