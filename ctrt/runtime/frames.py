"""What a frame handed to ``Session.update`` or ``Model.detect`` may be: OpenCV's BGR image (uint8, H x W x 3), or
what OpenCV users hand over and expect taken as OpenCV takes it: a gray image (H x W, or H x W x 1) and BGRA
(H x W x 4). Anything else is refused, naming ``frame`` and what it got, before the session changes."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CtrtError

CONVERSIONS = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}


def bgr_frame(frame: object) -> np.ndarray:
    """``frame`` as a uint8 BGR image (the same array when it already is one)."""
    if not isinstance(frame, np.ndarray):
        raise CtrtError(f"frame: got {type(frame).__name__}; give a numpy image (H x W x 3 uint8 BGR, as "
                        "cv2.imread and VideoCapture.read give)", option="frame")
    shape = frame.shape
    if frame.dtype != np.uint8:
        raise CtrtError(f"frame: got {frame.dtype} pixels; give uint8 (0-255), e.g. (image * 255).astype(np.uint8) "
                        "for a float image in [0, 1]", option="frame")
    channels = 1 if frame.ndim == 2 else shape[2] if frame.ndim == 3 else None
    if channels not in (1, 3, 4) or min(shape[:2]) < 1:
        raise CtrtError(f"frame: got shape {shape}; give H x W x 3 (BGR), H x W (gray) or H x W x 4 (BGRA)"
                        + (" with the channels last" if frame.ndim == 3 and shape[0] in (1, 3, 4) else ""),
                        option="frame")
    if channels == 3:
        return frame
    return cv2.cvtColor(frame, CONVERSIONS[channels])
