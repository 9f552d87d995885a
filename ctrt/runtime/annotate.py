"""The annotated frame: boxes and ids of the reported tracks, as the video sink and ``Results.plot()`` draw them."""

from __future__ import annotations

import cv2
import numpy as np

from typing import TYPE_CHECKING

from ..classes import class_name
from .detections import Detections

if TYPE_CHECKING:
    from ..counting.events import Overlay

COUNT_COLOR = (0, 215, 255)  # BGR amber: counting lines and zones, apart from any track's colour


def id_color(track_id: int) -> tuple[int, int, int]:
    return (track_id * 47 % 200 + 55, track_id * 97 % 200 + 55, track_id * 151 % 200 + 55)


def annotate(frame: np.ndarray, tracks: Detections, overlay: Overlay | None = None) -> np.ndarray:
    """Boxes of the tracks reported this frame, each labelled ``<id> <class> <score>`` on a filled tag of its colour
    (type sized to the frame, legible on a 1080p tile as on 320x240), drawn on a copy of the frame; with an
    ``overlay``, the counting lines (an arrow pointing to their ``in`` side) and zones, labelled with their totals."""
    canvas = frame.copy()
    shown = tracks[tracks.shown]
    scale = max(0.4, canvas.shape[0] / 900)
    thickness = max(1, round(scale * 1.5))
    if overlay is not None:
        _draw_counting(canvas, overlay, scale, thickness)
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


def _draw_counting(canvas: np.ndarray, overlay: Overlay, scale: float, thickness: int) -> None:
    for kind, xy, label in overlay.shapes:
        points = xy.round().astype(np.int32)
        cv2.polylines(canvas, [points], kind == "zone", COUNT_COLOR, thickness + 1, cv2.LINE_AA)
        if kind == "line":  # the in side: right of the line walking from its first point to its second
            (x1, y1), (x2, y2) = xy
            middle, length = (xy[0] + xy[1]) / 2, max(float(np.hypot(x2 - x1, y2 - y1)), 1.0)
            normal = np.array([-(y2 - y1), x2 - x1]) / length * 12 * scale / 0.4
            cv2.arrowedLine(canvas, tuple(middle.round().astype(int).tolist()),
                            tuple((middle + normal).round().astype(int).tolist()), COUNT_COLOR, thickness,
                            cv2.LINE_AA, tipLength=0.4)
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x, y = int(points[:, 0].min()), max(h + base, int(points[:, 1].min()))
        cv2.rectangle(canvas, (x, y - h - base), (x + w + 4, y), COUNT_COLOR, cv2.FILLED)
        cv2.putText(canvas, label, (x + 2, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness,
                    cv2.LINE_AA)
