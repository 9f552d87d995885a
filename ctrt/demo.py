"""``ctrt demo``: a short real video, the built-in default model, and the full tracker loop on it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import CtrtError
from .export.parity import sample_image
from .runtime.sinks import fourcc_for

# (asset, width, start xy, velocity px/frame): four photographed objects crossing a backdrop.
ACTORS = (("chelsea", 150, (20, 40), (14, 5)), ("coffee", 130, (480, 200), (-13, -4)),
          ("rocket", 110, (300, 10), (-3, 9)), ("astronaut", 100, (40, 230), (12, -6)))


def make_demo_video(path: Path, frames: int = 30, size: tuple[int, int] = (640, 360), fps: float = 10.0) -> Path:
    """Write a video (.mp4 or .avi) of real photos moving across a blurred photo backdrop (objects cross and overlap)."""
    width, height = size
    backdrop = cv2.GaussianBlur(cv2.resize(sample_image("coffee"), size), (0, 0), 9) // 2 + 40
    sprites = []
    for name, w, start, velocity in ACTORS:
        image = sample_image(name)
        h = round(image.shape[0] * w / image.shape[1])
        sprites.append((cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), np.array(start), np.array(velocity)))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), fourcc_for(path), fps, size)
    if not writer.isOpened():
        raise CtrtError(f"cannot write {path}")
    try:
        for t in range(frames):
            canvas = backdrop.copy()
            for sprite, origin, step in sprites:
                x, y = (int(v) for v in origin + step * t)
                sh, sw = sprite.shape[:2]
                x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sw, width), min(y + sh, height)
                if x1 > x0 and y1 > y0:
                    canvas[y0:y1, x0:x1] = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
            writer.write(canvas)
    finally:
        writer.release()
    return path
