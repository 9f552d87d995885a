"""Threaded capture: one reader thread per source, feeding a small buffer the tracker loop takes frames from.

Policy ``latest`` (cameras, URLs, GStreamer): the buffer holds one frame and a new frame replaces an untaken one,
which is counted as dropped, so a loop slower than the camera always gets the newest frame and latency stays bounded.
Policy ``none`` (files, image folders): every frame is kept in order; the reader waits while the buffer is full.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import CtrtError
from ..options import check
from .sources import FrameSource

QUEUE_FRAMES = 2  # frames read ahead under policy "none"


def drop_policy(drop: str | None, live: bool) -> str:
    """The policy of a stream: the one asked for, else ``latest`` for a live source and ``none`` for a file."""
    if drop is None:
        return "latest" if live else "none"
    return str(check("drop", drop))


@dataclass
class Captured:
    frame: np.ndarray
    time: float  # time.perf_counter() when the frame was read
    number: int  # the source's frames read so far, this one included: dropped frames count
    resumed: bool = False  # the first frame after the source was away: the stream starts anew from it


class FrameReader:
    def __init__(self, source: FrameSource, policy: str, arrived: threading.Event) -> None:
        self.source, self.policy, self.arrived = source, policy, arrived
        self.capacity = 1 if policy == "latest" else QUEUE_FRAMES
        self._items: deque[Captured] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self.done = False  # the source has no more frames (its end, lost, or stopped)
        self.exhausted = False  # the source came to its own end (not stopped)
        self.error: CtrtError | None = None
        self.read = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"capture {source.spec}", daemon=True)

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        comebacks = self.source.comebacks
        try:
            for frame in self.source.read_frames(lambda: self._stop):
                resumed, comebacks = self.source.comebacks != comebacks, self.source.comebacks
                with self._cond:
                    while self.policy == "none" and len(self._items) >= self.capacity and not self._stop:
                        self._cond.wait(0.1)
                    if self._stop:
                        break
                    if len(self._items) >= self.capacity:  # policy latest: the untaken frame is stale
                        resumed = self._items.popleft().resumed or resumed  # its news is not lost with it
                        self.dropped += 1
                    self.read += 1
                    self._items.append(Captured(frame, time.perf_counter(), self.read, resumed))
                    self._cond.notify_all()  # a take() waiting for this frame
                self.arrived.set()
            else:
                self.exhausted = True
        except CtrtError as exc:
            self.error = exc
        finally:
            with self._cond:
                self.done = True
                self._cond.notify_all()
            self.arrived.set()

    def take(self, wait: bool) -> Captured | None:
        """The next frame, or None; with ``wait``, block until one comes or the source is done."""
        with self._cond:
            # A source that is away is not waited for: the other streams go on while it reconnects.
            while wait and not self._items and not self.done and self.source.state != "reconnecting":
                self._cond.wait(0.05)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    @property
    def finished(self) -> bool:
        """Done and nothing left to take."""
        with self._cond:
            return self.done and not self._items

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)
