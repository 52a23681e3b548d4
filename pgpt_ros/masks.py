"""Mask geometry shared by the 3D step, the tracker and message building (numpy only)."""

from __future__ import annotations

import numpy as np


def mask_extent(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the True pixels of an HxW mask; None if it is empty.

    Two ``any`` reductions instead of ``np.nonzero`` over the whole image: several times faster on
    a camera frame, where an object covers a small part.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
