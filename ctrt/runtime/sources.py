"""Frame sources: webcam index, video file, stream URL, GStreamer pipeline, image folder or glob.

Live sources (camera, GStreamer, a streaming URL) that drop are reopened with exponential back-off; files end at
their end, and so does a URL that serves a file (an http:// .mp4 reports its frame count; a camera's MJPEG stream
does not). Unreadable frames and images are skipped and counted.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..errors import CtrtError
from ..inputs import IMAGE_LIMIT, regular_file
from ..options import attempts_left, default

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_TIMEOUT_MS = 5000
# A video file that fails this many reads in a row is over, even if its header promised more frames.
MAX_BAD_READS = 10
# URL schemes that only ever carry live streams; other URLs (http, https, ftp, file) are live only without a length.
REMOTE_FILE_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
LIVE_SCHEMES = {"rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp", "mms"}

CaptureFactory = Callable[..., Any]


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image, or None where it is not a regular file of bounded size (a FIFO would block the read), cannot be
    decoded or has more pixels than OpenCV is allowed to decode (``ctrt.MAX_IMAGE_PIXELS``; OpenCV 5 raises on
    those, 4 returns None)."""
    try:
        regular_file(path, limit=IMAGE_LIMIT)
        return cv2.imread(str(path), cv2.IMREAD_COLOR)
    except (CtrtError, cv2.error):
        return None


def decode_image(data: bytes) -> np.ndarray | None:
    """``read_image`` for bytes already read."""
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        return None


def has_gstreamer() -> bool:
    """Whether this OpenCV can open GStreamer pipelines (the registry also lists backends it merely knows)."""
    return bool(cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER))


def source_files(spec: str) -> list[Path]:
    """What a source spec reads (a video, an image folder as a whole, a glob's matches): no output may be one or
    lie in the folder."""
    if spec.isdigit() or "://" in spec:
        return []
    if Path(spec).exists():  # an existing file or folder is one, whatever characters its name has
        return [Path(spec)]
    if "!" in spec:
        return []
    if any(ch in spec for ch in "*?["):
        return [Path(p) for p in glob.glob(spec)]
    path = Path(spec)
    return [path]


def frame_size(spec: str) -> tuple[int, int] | None:
    """The width and height of a video file's frames, read without decoding one; None for anything else (a camera,
    a stream, an image folder) or a file OpenCV cannot tell."""
    files = source_files(spec)
    if len(files) != 1 or not files[0].is_file() or files[0].suffix.lower() in IMAGE_SUFFIXES:
        return None
    capture = cv2.VideoCapture(str(files[0]))
    try:
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    return (width, height) if width > 0 and height > 0 else None


BACKOFF_MAX_S = 8.0  # the longest wait between two reconnect attempts: a camera back is seen within it
# A source's states, one at a time (``FrameSource.state``); "stale" (live but no frame lately) is judged by whoever
# watches the time (the HTTP endpoint, ``CameraState``).
STATES = ("starting", "live", "reconnecting", "ended", "failed")


def backoff_delay(attempt: int, base_s: float = 0.5) -> float:
    """Seconds before reconnect attempt ``attempt`` (from 0): doubling from ``base_s``, at most ``BACKOFF_MAX_S``."""
    return float(min(base_s * 2 ** min(attempt, 32), BACKOFF_MAX_S))


class FrameSource:
    """Frames from one source, with its lifecycle: a live source that drops (or is down when the run starts) is
    reopened with back-off for ``reconnects`` attempts (``forever``: as long as the run lasts)."""

    def __init__(self, spec: str, reconnects: int | str = default("reconnects"), backoff_s: float = 0.5,
                 capture_factory: CaptureFactory = cv2.VideoCapture,
                 notify: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self.reconnects = reconnects
        self.backoff_s = backoff_s
        self.factory = capture_factory
        self.notify = notify or (lambda message: None)
        self.skipped = 0
        self.reconnected = 0
        self.attempt = 0  # reconnect attempts since the source was last live
        self.lost = False
        self.comebacks = 0  # times frames came again after the source was away: its next frame starts anew
        self.state, self.since = "starting", time.time()
        self.down_s = 0.0  # time spent reconnecting, over the run
        self.was_open = False
        self._frames = 0
        self.images: list[Path] = []
        self.capture: Any = None
        self.kind = self._classify(spec)
        self.live = self.kind in ("camera", "gstreamer") or (
            self.kind == "stream" and spec.split("://", 1)[0].lower() in LIVE_SCHEMES)
        self.total: int | None = len(self.images) if self.kind == "images" else None
        self.fps = 30.0
        if self.kind != "images":
            self.capture = self._open()
            if self.capture is None:
                # A URL down at the start tells nothing of itself: it is a camera (one that joins when it comes up)
                # unless its path names a video file.
                self.live = self.live or (self.kind == "stream" and not urlsplit(spec).path.lower().endswith(
                    REMOTE_FILE_SUFFIXES))
                if not (self.live and attempts_left(reconnects, 0)):
                    raise CtrtError(f"cannot open {self.kind} source {spec!r}"
                                    + (" (is the camera connected and free?)" if self.kind == "camera" else ""))
                self.notify(f"{spec}: not reachable yet; it joins the run when it comes up")
                self._enter("reconnecting")
                return
            self._opened()

    def _opened(self) -> None:
        """What an opened capture tells: its frame rate, and for a URL whether it is live or a file."""
        self.was_open = True
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 0 < fps < 240 else 30.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if self.kind == "stream":
            self.live = self.live or count <= 0
        if not self.live and count > 0:
            self.total = count

    def _enter(self, state: str) -> None:
        now = time.time()
        if self.state == "reconnecting":
            self.down_s += now - self.since
        self.state, self.since = state, now

    def _classify(self, spec: str) -> str:
        if spec.isdigit():
            return "camera"
        if Path(spec).is_file() and "://" not in spec:  # "a!b.avi", "clip[1].avi": an existing file is a file
            path = Path(spec)
            self.images = [path] if path.suffix.lower() in IMAGE_SUFFIXES else []
            return "images" if self.images else "video"
        if "://" in spec:
            return "stream"
        if "!" in spec:
            if not has_gstreamer():
                raise CtrtError("this OpenCV build has no GStreamer support; on a Jetson use JetPack's OpenCV "
                                "(python3-opencv) for CSI cameras, or pass a device index or URL")
            return "gstreamer"
        if any(ch in spec for ch in "*?["):
            self.images = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
            if not self.images:
                raise CtrtError(f"no images match {spec!r}")
            return "images"
        path = Path(spec)
        if path.is_dir():
            self.images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.images:
                raise CtrtError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {spec}")
            return "images"
        if not path.is_file():
            raise CtrtError(f"source not found: {spec} (expected a camera index, file, folder, glob or URL)")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            self.images = [path]
            return "images"
        return "video"

    def _open(self) -> Any:
        if self.kind == "camera":
            capture = self.factory(int(self.spec))
        elif self.kind == "stream":
            capture = self.factory(self.spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                               cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        elif self.kind == "gstreamer":
            capture = self.factory(self.spec, cv2.CAP_GSTREAMER)
        else:
            capture = self.factory(self.spec)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def _reopen(self, stopped: Callable[[], bool]) -> bool:
        """Back-off 0.5, 1, 2 ... s (at most ``BACKOFF_MAX_S``) between attempts; False once every attempt failed
        (the source is then ``failed``) or ``stopped`` says the run is ending."""
        if self.capture is not None:
            self.capture.release()
            self.capture = None
        if self.state != "reconnecting":
            self._enter("reconnecting")
            self.attempt = 0
        while attempts_left(self.reconnects, self.attempt):
            delay = backoff_delay(self.attempt, self.backoff_s)
            self.attempt += 1
            self.notify(f"{self.spec}: stream lost, reconnecting ({self.attempt}/{self.reconnects}) in {delay:.1f} s")
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:  # a stop is seen within a tenth of a second
                if stopped():
                    return False
                time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
            capture = self._open()
            if capture is not None:
                self.capture = capture
                if self.was_open:  # a reconnect; a source down at the start joins, which is not one
                    self.reconnected += 1
                self._opened()
                self.notify(f"{self.spec}: back after {time.time() - self.since:.0f} s")
                return True
        self.lost = True
        self._enter("failed")
        self.notify(f"{self.spec}: gave up after {self.attempt} reconnect attempts")
        return False

    def nothing_read(self) -> str:
        """Why a source that opened gave no frame at all (said instead of a silent, empty run)."""
        if self.kind == "images":
            return f"none of the {len(self.images)} images of {self.spec!r} could be read (corrupt or not images)"
        if self.lost:
            return f"{self.spec!r} was lost before its first frame and did not come back after {self.reconnects} attempts"
        return f"{self.spec!r} opened but gave no frame (an empty or undecodable {self.kind})"

    def read_frames(self, stopped: Callable[[], bool] = lambda: False) -> Iterator[np.ndarray]:
        """The frames, in order, to the source's end (or its loss); ``stopped`` ends a reconnect wait early."""
        self._frames = 0
        if self.kind == "images":
            self._enter("live")
            for path in self.images:
                frame = read_image(path)
                if frame is None:
                    self.skipped += 1
                    continue
                self._frames += 1
                yield frame
            self._enter("ended")
            return
        bad_reads = 0
        while True:
            if self.capture is None and not self._reopen(stopped):  # down at the start, or lost
                return
            ok, frame = self.capture.read()
            if ok and frame is not None:
                bad_reads = 0
                if self.state != "live":
                    if self.state == "reconnecting" and self._frames:
                        self.comebacks += 1
                    self._enter("live")
                self._frames += 1
                yield frame
                continue
            if self.live:
                if not self._reopen(stopped):
                    return
                continue
            # A file: the end, or an undecodable frame before the end (skip it and carry on).
            position = self.capture.get(cv2.CAP_PROP_POS_FRAMES)
            total = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
            bad_reads += 1
            if total <= 0 or position >= total or bad_reads >= MAX_BAD_READS:
                self._enter("ended")
                return
            self.skipped += 1

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.read_frames()

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
