"""What a run reports: per stream frames, drops, reconnects, FPS and latency, and the run's exit status
(``Run.report``)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import Interrupted

LATENCY_SAMPLES = 4096


@dataclass
class StreamReport:
    """One stream of a run: what it gave and how it went (``Run.report.streams``)::

        >>> for s in run.report.streams:
        ...     print(s.name, s.frames, s.dropped, f"{s.fps:.1f} FPS", s.latency_percentiles().get("p99"))
    """

    name: str
    frames: int = 0
    dropped: int = 0  # stale frames of a live source dropped to stay live
    skipped: int = 0  # unreadable frames or images
    reconnects: int = 0
    tracks: int = 0  # track ids given out
    seconds: float = 0.0
    lost: bool = False  # a live source that dropped and did not come back
    state: str = "starting"  # its source's: starting, live, reconnecting, ended, failed (sources.STATES)
    state_since: float = 0.0  # time.time() when it entered that state
    down_s: float = 0.0  # time spent reconnecting
    attempt: int = 0  # reconnect attempts since it was last live
    last_frame_at: float = 0.0  # time.time() of its last tracked frame
    camera_fps: float = 0.0  # what a live source says it gives (0: a file, or unknown)
    behind: bool = False  # tracked at less than BEHIND_SHARE of the camera's rate (said once, in a warning)
    error: str | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean per frame
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # Session.counts' form, if it counts
    # ms from capture (live) or from being taken (files) to tracks, latest frames only (a run may last months)
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES), repr=False)

    @property
    def fps(self) -> float:
        """Frames per second of the stream's own wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def condition(self, stale_after: float, now: float | None = None) -> str:
        """Its state as a person reads it: the source's, or ``stale`` when live but without a frame for
        ``stale_after`` seconds (a camera that hangs without dropping its connection)."""
        now = time.time() if now is None else now
        if self.state == "live" and now - max(self.last_frame_at, self.state_since) > stale_after:
            return "stale"
        return self.state

    def latency_percentiles(self) -> dict[str, float]:
        """p50, p90 and p99 of the latest frames' latency in ms (empty before the first frame)."""
        if not self.latency_ms:
            return {}
        values = np.percentile(np.fromiter(self.latency_ms, float), (50, 90, 99))
        return dict(zip(("p50", "p90", "p99"), values.tolist()))


@dataclass
class RunReport:
    """A whole run: every stream's report, and the exit status the CLI ends with::

        >>> run.report.frames, run.report.exit_status
        (300, 0)
    """

    streams: list[StreamReport]
    seconds: float = 0.0
    batches: int = 0  # model calls
    interrupted: Interrupted | None = None  # the signal that stopped the run
    published: Any = None  # a ``PublishReport`` when the run published its tracks

    @property
    def frames(self) -> int:
        """Frames tracked over all streams."""
        return sum(s.frames for s in self.streams)

    @property
    def exit_status(self) -> int:
        """128 + signal when stopped by Ctrl-C/SIGTERM/SIGHUP, 1 when a stream was lost or failed, 2 when no
        stream gave a frame, 0 when every stream ran to its end (outputs are complete in every case)."""
        if self.interrupted is not None:
            return self.interrupted.exit_code
        if not self.frames:
            return 2
        return 1 if any(s.lost or s.error for s in self.streams) else 0
