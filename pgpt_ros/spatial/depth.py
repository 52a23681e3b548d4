"""Depth images in the two encodings of REP 118, read as metres with invalid pixels as NaN.

- ``16UC1``: unsigned 16-bit millimetres; 0 means "no measurement".
- ``32FC1``: 32-bit float metres; NaN, +-inf and 0 mean "no measurement".

Both: values outside [min_m, max_m] (the sensor's trustworthy range, parameters of the node) are
invalid too. Decoding is lazy: ``DepthImage`` keeps the raw array (a view of the message) and
converts only the pixels an object covers, so a frame nobody asks about costs nothing.
"""

from __future__ import annotations

import numpy as np

# encoding -> (element dtype, metres per unit)
DEPTH_ENCODINGS: dict[str, tuple[np.dtype, float]] = {
    "16UC1": (np.dtype(np.uint16), 0.001),
    "32FC1": (np.dtype(np.float32), 1.0),
}


class DepthImage:
    """One depth frame: an HxW raw array of ``encoding`` and the valid range in metres.

    Arguments:
        raw (np.ndarray): HxW, uint16 for 16UC1 or float32 for 32FC1 (either byte order).
        encoding (str): "16UC1" or "32FC1".
        min_m, max_m (float): depths outside this range are invalid.
    """

    def __init__(self, raw: np.ndarray, encoding: str, min_m: float, max_m: float) -> None:
        if encoding not in DEPTH_ENCODINGS:
            raise ValueError(
                f"depth encoding {encoding!r} is not supported; publish 16UC1 (millimetres) or "
                "32FC1 (metres)"
            )
        dtype, self.scale = DEPTH_ENCODINGS[encoding]
        if raw.ndim != 2 or raw.dtype.kind != dtype.kind or raw.dtype.itemsize != dtype.itemsize:
            raise ValueError(
                f"{encoding} depth needs an HxW {dtype} array, got {raw.dtype} {raw.shape}"
            )
        if not 0.0 <= min_m < max_m:
            raise ValueError(f"need 0 <= min_m < max_m, got {min_m}, {max_m}")
        self.raw, self.encoding, self.min_m, self.max_m = raw, encoding, min_m, max_m

    @property
    def height(self) -> int:
        return self.raw.shape[0]

    @property
    def width(self) -> int:
        return self.raw.shape[1]

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Depths in metres at pixels (rows, cols), shape (N,) float64; NaN where invalid."""
        metres = self.raw[rows, cols].astype(np.float64) * self.scale
        # Comparisons with NaN are False, so NaN fails the test too; +-inf is out of range.
        valid = (metres > 0.0) & (metres >= self.min_m) & (metres <= self.max_m)
        metres[~valid] = np.nan
        return metres

    def metres(self) -> np.ndarray:
        """The whole frame in metres, HxW float64 with NaN where invalid."""
        rows, cols = np.indices(self.raw.shape)
        return self.at(rows, cols)
