"""Where tracks go: annotated video, MOTChallenge txt, JSON lines (CenterTrack's fields), a window.

Files are opened at the first frame (a run that fails before it leaves nothing behind) and are flushed and closed
on every exit path, so an interrupted run still leaves complete, readable outputs. Text files hold whole frames
only: a write that fails (a full disk) is cut back to the last complete frame before the error is raised.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Protocol

import cv2
import numpy as np

from ..errors import CtrtError
from ..outputs import os_reason, partial_prefix, remove_stale_partials
from .results import Results

log = logging.getLogger("ctrt")


class Sink(Protocol):
    """A consumer of a stream's ``Results``, closed complete however the run ends."""

    @property
    def paths(self) -> list[Path]:
        """The files it has begun writing."""

    def write(self, results: Results) -> None: ...

    def close(self) -> None: ...


class TextSink(ABC):
    """A text file opened at the first frame; each frame's text reaches the file whole, or not at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._complete = 0  # bytes of whole frames in the file
        self._before_last = 0  # bytes before the last frame, for undo()
        self.frames = 0

    @property
    def paths(self) -> list[Path]:
        return [self.path] if self._file is not None else []

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
        self._before_last, self._complete = self._complete, self._complete + len(data)
        self.frames += 1

    def undo(self) -> None:
        """Take the last frame back out (another output of this frame failed), so all end on the same frame."""
        if self._file is not None and self.frames:
            os.ftruncate(self._file.fileno(), self._before_last)
            self._complete = self._before_last
            self.frames -= 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            if self.frames == 0:  # its only frame was taken back (another output refused it): leave nothing
                self.path.unlink(missing_ok=True)


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


def segment_path(path: Path, index: int) -> Path:
    """The ``index``-th segment of a segmented video: ``v.mp4`` -> ``v-00000.mp4``, ``v-00001.mp4``, ..."""
    return path.with_name(f"{path.stem}-{index:05d}{path.suffix}")


class VideoSink:
    """Annotated video (``Results.plot()``); the codec follows the suffix (.mp4 mp4v, .avi MJPG).

    An .mp4 is written under a hidden partial name (its writer's pid in it) and takes its own name when finalised:
    its index comes last, so an .mp4 cut by a crash is unreadable, and a later run removes it. An .avi (MJPG) is
    readable up to its last frame however it ends, and is written under its name. With ``segment_s`` the video is a
    series of numbered files of that many seconds each (``segment_path``), each finalised when the next begins, so
    a crash loses at most the segment being written.

    A live camera's video (``wall``) plays in real time: a video file has one frame rate (the camera's), so each
    frame is held on screen until the next one is tracked (written again for every frame time that passes: a loop
    tracking 2 of the camera's 10 frames a second writes each 5 times), and its segments are cut by wall time, each
    beginning where the one before ended. A pause longer than ``HOLD_LIMIT_S`` (a camera away) is not filled: the
    video goes on from the next frame.
    """

    HOLD_LIMIT_S = 10.0
    RESERVE_BYTES = 1 << 20  # left free for the file's index and the writer's buffer, written when it is closed

    def __init__(self, path: Path, fps: float, segment_s: float | None = None, wall: bool = False) -> None:
        self.path, self.fps, self.wall = path, fps, wall
        # A file's segments hold a fixed count of its frames; a live camera's are cut by wall time (a loop slower
        # than the camera would otherwise stretch a segment far beyond its seconds).
        self.segment_frames = max(1, round(segment_s * fps)) if segment_s and not wall else None
        self.segment_s = segment_s if wall else None
        self._begun = 0.0  # the monotonic time of the file's time 0 (a live camera's)
        self._held: np.ndarray | None = None  # the last frame written (a live camera's), held until the next
        self.paths: list[Path] = []  # the files begun, in order
        self._writer: cv2.VideoWriter | None = None
        self._writing: Path | None = None  # the file the writer writes (a partial name for an .mp4)
        self._frames = 0  # in the file being written
        self.tracked = 0  # frames given to write(), over every segment
        self._canvas: np.ndarray | None = None  # the video's size, for frames of another size
        self._warned = False

    def _begin(self, frame: np.ndarray, now: float) -> None:
        # A live segment begins where the one before ended (its frames' times), so their durations add up.
        self._begun = self._begun + self._frames / self.fps if self._writer is not None else now
        self._finalise()
        dest = segment_path(self.path, len(self.paths)) if self.segment_frames or self.segment_s else self.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(dest.parent)
        self._writing = (dest.with_name(f"{partial_prefix(dest)}video.partial{dest.suffix}")
                         if dest.suffix.lower() != ".avi" else dest)
        self._writer = cv2.VideoWriter(str(self._writing), fourcc_for(dest), self.fps,
                                       (frame.shape[1], frame.shape[0]))
        if not self._writer.isOpened():
            self._writer = None
            raise CtrtError(f"cannot write video {dest}: OpenCV could not start its "
                            f"{'MJPG' if dest.suffix.lower() == '.avi' else 'mp4v'} encoder for "
                            f"{frame.shape[1]}x{frame.shape[0]} frames")
        self.paths.append(dest)
        self._frames = 0
        if self._canvas is None:
            self._canvas = np.zeros_like(frame)
            self._held = np.zeros_like(frame) if self.wall else None

    def _finalise(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        assert self._writing is not None
        if self._writing != self.paths[-1]:
            os.replace(self._writing, self.paths[-1])

    def write(self, results: Results) -> None:
        now = time.monotonic()
        if self._writer is not None and self.wall:
            self._hold(now)
        due = self._frames == self.segment_frames or (
            self.segment_s is not None and now - self._begun >= self.segment_s)
        if self._writer is None or due:
            self._begin(results.frame, now)
        assert self._writer is not None and self._canvas is not None
        self._make_room(results.frame)
        image = results.plot()
        if image.shape != self._canvas.shape:
            image = self._letterbox(image, results.index)
        self._writer.write(image)
        self._frames += 1
        self.tracked += 1
        if self._held is not None:
            np.copyto(self._held, image)

    def _make_room(self, frame: np.ndarray, count: int = 1) -> None:
        """Refuse ``count`` more frames while the disk cannot take them: OpenCV's writer loses frames on a full disk
        without a word, so the file is closed readable and the frame refused (the text files take it back)."""
        assert self._writing is not None
        written = self._writing.stat().st_size if self._frames else 0
        per_frame = 2 * written / self._frames if written else frame.nbytes  # the first: at most its raw size
        disk = os.statvfs(self._writing.parent)
        if disk.f_bavail * disk.f_frsize < self.RESERVE_BYTES + count * per_frame:
            kept, dest = self._frames, self.paths[-1]
            self._finalise()
            if not kept:  # a segment just begun: no file of no frames is left
                dest.unlink(missing_ok=True)
                self.paths.pop()
            raise CtrtError(f"cannot write {dest}: no space left on device; the video keeps the {self.tracked} "
                            "complete frames written before")

    def _hold(self, now: float) -> None:
        """The last frame stays on screen for every frame time that has ended by ``now``."""
        assert self._writer is not None and self._held is not None
        behind = int((now - self._begun) * self.fps) - self._frames
        if behind > self.HOLD_LIMIT_S * self.fps:
            self._begun = now - self._frames / self.fps  # the pause is left out of the video
            return
        if behind > 0:
            self._make_room(self._held, behind + 1)
        for _ in range(behind):
            self._writer.write(self._held)
            self._frames += 1

    def _letterbox(self, image: np.ndarray, index: int) -> np.ndarray:
        """A frame of another size than the video's, scaled into it and centred: a video cannot change size, and
        every frame must reach it (as many video frames as JSON lines)."""
        assert self._canvas is not None
        height, width = self._canvas.shape[:2]
        h, w = image.shape[:2]
        if not self._warned:
            log.warning(f"{self.path}: frame {index} is {w}x{h}, the video {width}x{height}; frames of another size "
                        "are letterboxed into it")
            self._warned = True
        scale = min(width / w, height / h)
        nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
        x, y = (width - nw) // 2, (height - nh) // 2
        self._canvas[:] = 0
        cv2.resize(image, (nw, nh), dst=self._canvas[y:y + nh, x:x + nw], interpolation=cv2.INTER_AREA)
        return self._canvas

    def close(self) -> None:
        self._finalise()


class WindowSink:
    """An OpenCV window; ESC or q asks the run to stop."""

    paths: list[Path] = []  # writes no file

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
