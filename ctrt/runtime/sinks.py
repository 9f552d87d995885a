"""Where tracks go: annotated video, MOTChallenge txt, JSON lines (CenterTrack's fields), a window.

Files are opened at the first frame (a run that fails before it leaves nothing behind) and are flushed and closed
on every exit path, so an interrupted run still leaves complete, readable outputs. Text files hold whole frames
only: a write that fails (a full disk) is cut back to the last complete frame before the error is raised.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Protocol

import cv2

from ..errors import CtrtError
from ..outputs import os_reason
from .results import Results


class Sink(Protocol):
    """A consumer of a stream's ``Results``, closed complete however the run ends."""

    def write(self, results: Results) -> None: ...

    def close(self) -> None: ...


class TextSink(ABC):
    """A text file opened at the first frame; each frame's text reaches the file whole, or not at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._complete = 0  # bytes of whole frames in the file
        self.frames = 0

    @abstractmethod
    def text(self, results: Results) -> str:
        """The text this frame adds."""

    def write(self, results: Results) -> None:
        data = memoryview(self.text(results).encode())
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


class MotSink(TextSink):
    """MOTChallenge tracker file: ``Results.to_mot()`` per frame."""

    def text(self, results: Results) -> str:
        return results.to_mot()


class JsonLinesSink(TextSink):
    """One JSON object per frame, ``Results.to_json()``: ``{"frame": n, "results": [CenterTrack result dicts]}``,
    every track the tracker holds, with ``shown``: whether the video and MOT file report it this frame."""

    def text(self, results: Results) -> str:
        return results.to_json() + "\n"


VIDEO_SUFFIXES = (".mp4", ".avi")


def fourcc_for(path: Path) -> int:
    """MJPG for .avi (survives truncation), mp4v otherwise (OpenCV's pip wheels have no H.264 encoder)."""
    return cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))


class VideoSink:
    """Annotated video (``Results.plot()``); the codec follows the suffix (.mp4 mp4v, .avi MJPG)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, results: Results) -> None:
        frame = results.frame
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), fourcc_for(self.path), self.fps,
                                           (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise CtrtError(f"cannot write video {self.path}: OpenCV could not start its "
                                f"{'MJPG' if self.path.suffix.lower() == '.avi' else 'mp4v'} encoder there")
        self._writer.write(results.plot())

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
            raise CtrtError("show needs an OpenCV with GUI support (pip install opencv-python, not -headless) "
                            "and a display", option="show") from None

    def write(self, results: Results) -> None:
        cv2.imshow(self.title, results.plot())
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyWindow(self.title)
