"""Where tracks go: annotated video, MOTChallenge txt, JSON lines (CenterTrack's fields), a window.

Files are opened at the first frame (a run that fails before it leaves nothing behind) and are flushed and closed
on every exit path, so an interrupted run still leaves complete, readable outputs. Text files hold whole frames
only: a write that fails (a full disk) is cut back to the last complete frame before the error is raised.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from collections.abc import Iterable
from typing import IO, Protocol

import cv2
import numpy as np

from ..errors import CtrtError
from ..outputs import os_reason
from .detections import Detections


class Sink(Protocol):
    def write(self, index: int, frame: np.ndarray, tracks: Detections) -> None: ...

    def close(self) -> None: ...


class TextSink(ABC):
    """A text file opened at the first frame; each frame's text reaches the file whole, or not at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._complete = 0  # bytes of whole frames in the file
        self.frames = 0

    @abstractmethod
    def lines(self, index: int, tracks: Detections) -> Iterable[str]:
        """The text this frame adds."""

    def write(self, index: int, frame: np.ndarray, tracks: Detections) -> None:
        data = memoryview("".join(self.lines(index, tracks)).encode())
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("wb", buffering=0)
            fd = self._file.fileno()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError as exc:
            if self._file is not None:
                os.ftruncate(self._file.fileno(), self._complete)
            raise CtrtError(f"cannot write {self.path}: {os_reason(exc)}; it keeps the {self.frames} complete frames "
                            "written before") from None
        self._complete += len(data)
        self.frames += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def mot_rows(index: int, tracks: Detections) -> Iterable[str]:
    """MOTChallenge rows ``frame,id,x,y,w,h,score,-1,-1,-1`` (1-based frames) for the tracks reported this frame."""
    shown = tracks[tracks.shown]
    x1, y1, x2, y2 = shown.boxes.T
    rows = np.stack([x1, y1, x2 - x1, y2 - y1, shown.scores], axis=1)
    return (f"{index + 1},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n"
            for tid, (x, y, w, h, s) in zip(shown.ids.tolist(), rows.tolist()))


class MotSink(TextSink):
    """MOTChallenge tracker file (see ``mot_rows``)."""

    def lines(self, index: int, tracks: Detections) -> Iterable[str]:
        return mot_rows(index, tracks)


class JsonLinesSink(TextSink):
    """One JSON object per frame: ``{"frame": n, "results": [CenterTrack result dicts]}``, every track the tracker
    holds, with ``shown``: whether the video and MOT file report it this frame."""

    def lines(self, index: int, tracks: Detections) -> Iterable[str]:
        results = [
            {"score": s, "class": c, "ct": ct, "tracking": tr, "bbox": box, "tracking_id": tid, "age": age,
             "active": act, "shown": shown}
            for s, c, ct, tr, box, tid, age, act, shown in zip(
                tracks.scores.tolist(), tracks.classes.tolist(), tracks.centers.tolist(), tracks.tracking.tolist(),
                tracks.boxes.tolist(), tracks.ids.tolist(), tracks.ages.tolist(), tracks.active.tolist(),
                tracks.shown.tolist())
        ]
        return [json.dumps({"frame": index + 1, "results": results}) + "\n"]


VIDEO_SUFFIXES = (".mp4", ".avi")


def fourcc_for(path: Path) -> int:
    """MJPG for .avi (survives truncation), mp4v otherwise (OpenCV's pip wheels have no H.264 encoder)."""
    return cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))


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


class VideoSink:
    """Annotated video; the codec follows the suffix (.mp4 mp4v, .avi MJPG)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, index: int, frame: np.ndarray, tracks: Detections) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), fourcc_for(self.path), self.fps,
                                           (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise CtrtError(f"cannot write video {self.path}: OpenCV could not start its "
                                f"{'MJPG' if self.path.suffix.lower() == '.avi' else 'mp4v'} encoder there")
        self._writer.write(annotate(frame, tracks))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class WindowSink:
    """An OpenCV window; ESC or q asks the run to stop."""

    def __init__(self, title: str = "ctrt") -> None:
        self.title = title
        self.stop_requested = False
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise CtrtError("--show needs an OpenCV with GUI support (pip install opencv-python, not -headless) "
                            "and a display") from None

    def write(self, index: int, frame: np.ndarray, tracks: Detections) -> None:
        cv2.imshow(self.title, annotate(frame, tracks))
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyWindow(self.title)
