"""Inference runtime: the Perceiver the node calls, and the backends behind it."""

from pgpt_ros.runtime.perceiver import Perceiver, Perception, PixelDetection

__all__ = ["Perceiver", "Perception", "PixelDetection"]
