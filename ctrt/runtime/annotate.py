"""The annotated frame: boxes and ids of the reported tracks, as the video sink and ``Results.plot()`` draw them."""

from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections
from .results import class_name


def id_color(track_id: int) -> tuple[int, int, int]:
    return (track_id * 47 % 200 + 55, track_id * 97 % 200 + 55, track_id * 151 % 200 + 55)


def annotate(frame: np.ndarray, tracks: Detections) -> np.ndarray:
    """Boxes of the tracks reported this frame, each labelled ``<id> <class> <score>`` on a filled tag of its colour
    (type sized to the frame, legible on a 1080p tile as on 320x240), drawn on a copy of the frame."""
    canvas = frame.copy()
    shown = tracks[tracks.shown]
    scale = max(0.4, canvas.shape[0] / 900)
    thickness = max(1, round(scale * 1.5))
    for (x1, y1, x2, y2), tid, cls, score in zip(shown.boxes.round().astype(int).tolist(), shown.ids.tolist(),
                                                 shown.classes.tolist(), shown.scores.tolist()):
        color = id_color(tid)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness + 1)
        label = f"{tid} {class_name(cls)} {score:.2f}"
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y1 - h - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + w + 4, top + h + base + 2), color, cv2.FILLED)
        cv2.putText(canvas, label, (x1 + 2, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness,
                    cv2.LINE_AA)
    return canvas
