"""The annotated frame: boxes and ids of the reported tracks, as the video sink and ``Results.plot()`` draw them."""

from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections


def id_color(track_id: int) -> tuple[int, int, int]:
    return (track_id * 47 % 200 + 55, track_id * 97 % 200 + 55, track_id * 151 % 200 + 55)


def annotate(frame: np.ndarray, tracks: Detections) -> np.ndarray:
    """Boxes and ids of the tracks reported this frame, drawn on a copy of the frame."""
    canvas = frame.copy()
    shown = tracks[tracks.shown]
    for (x1, y1, x2, y2), tid, score in zip(shown.boxes.round().astype(int).tolist(), shown.ids.tolist(),
                                            shown.scores.tolist()):
        color = id_color(tid)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2)
        cv2.putText(canvas, f"{tid} {score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1,
                    cv2.LINE_AA)
    return canvas
