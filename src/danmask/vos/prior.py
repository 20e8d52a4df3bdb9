"""The spatial prior of the memory read, in numpy and OpenCV: the same function for training and the runtime."""
from __future__ import annotations

import cv2
import numpy as np


def spatial_prior(prev: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-d^2 / 2 sigma^2) with d the distance (in cells) to the nearest cell where `prev` (h, w) > 0.5;
    all ones when the object was nowhere (nothing to stay close to). float32 (h, w)."""
    fg = prev > 0.5
    if not fg.any():
        return np.ones(prev.shape, np.float32)
    d = cv2.distanceTransform((~fg).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.exp(-(d * d) / (2 * sigma * sigma)).astype(np.float32)
