"""Several cameras on one model: one batched inference per tick, threaded capture, host work overlapped.

Streams are dealt round-robin into lanes; each lane gathers the ready frame of each of its streams into the slots
of one batch. A lane's inference runs on a worker thread (ONNX Runtime releases the GIL; TensorRT runs on its
stream) while the main thread decodes and tracks the other lane's last batch and pre-processes its next one. A
stream's frames are processed strictly in order (its pre_hm needs its previous tracks), so overlapping changes no
result: the per-stream code is ``StreamState``, the same as a single-stream run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..counting.counter import Counter
from ..counting.shapes import Shape
from ..errors import CtrtError, Interrupted
from ..shutdown import signals_held
from .backends.base import Backend
from .capture import FrameReader
from .decode import TOPK
from .pipeline import StreamState
from .reports import RunReport, StreamReport
from .results import Results
from .sinks import Sink, TextSink
from .sources import FrameSource
from .tracker import TrackerConfig
from .tracker_protocol import TrackerSource

log = logging.getLogger("ctrt")


@dataclass
class Stream:
    name: str
    source: FrameSource
    sinks: list[Sink]
    policy: str  # "latest" or "none"
    tracker: TrackerSource = None  # this stream's own, else the run's
    shapes: tuple[Shape, ...] = ()  # the lines and zones it counts with
    counts_file: Path | None = None  # their totals kept across restarts (a service's)



def lanes_for(count: int, model_batch: int, overlap: bool) -> int:
    """How many lanes: enough for a fixed batch to hold each lane's streams, two to overlap when there are two."""
    needed = math.ceil(count / model_batch) if model_batch > 0 else 1
    return max(needed, 2 if overlap and count > 1 else 1)


class _Live:
    """A stream while it runs: its reader, tracker state, sinks and counters."""

    def __init__(self, stream: Stream, state: StreamState, arrived: threading.Event) -> None:
        self.stream, self.state = stream, state
        self.reader = FrameReader(stream.source, stream.policy, arrived)
        self.report = StreamReport(stream.name)
        if state.counter is not None:
            self.report.counts = state.counter.totals()
        self.frame: np.ndarray | None = None  # the frame in flight, for the sinks
        self.number = 0  # the source's number of the frame in flight (frames read, dropped ones too)
        self.gap = 1  # camera frames between the previous frame tracked and the one in flight
        self.closed = False
        self.start = time.perf_counter()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.reader.stop()
        for sink in self.stream.sinks:
            sink.close()
        self.reader.join()
        self.stream.source.close()
        if self.state.counter is not None:
            self.state.counter.close()
        self.refresh()
        s = self.report
        s.stage_ms = self.state.times.mean() if self.state.times.count else {}
        if self.reader.error is not None:
            s.error = str(self.reader.error)
        elif s.frames == 0 and self.reader.exhausted:
            s.error = self.stream.source.nothing_read()

    def refresh(self) -> None:
        """The report's counters as they are now (read live by metrics, final at close)."""
        s = self.report
        s.seconds = time.perf_counter() - self.start
        s.dropped, s.skipped = self.reader.dropped, self.stream.source.skipped
        source = self.stream.source
        s.reconnects, s.lost, s.state, s.state_since = source.reconnected, source.lost, source.state, source.since
        s.down_s = source.down_s + (time.time() - source.since if source.state == "reconnecting" else 0.0)
        s.attempt = source.attempt if source.state == "reconnecting" else 0
        if source.live and source.state == "live":
            s.camera_fps = source.fps
            behind = s.seconds >= BEHIND_AFTER_S and s.frames >= 10 and s.fps < BEHIND_SHARE * source.fps
            if behind and not s.behind:
                log.warning(f"{s.name}: tracked at {s.fps:.1f} FPS while the camera gives {source.fps:.0f}: "
                            f"{s.dropped} frames dropped so far to stay live; a faster model or fewer cameras "
                            "on it keep objects from jumping between tracked frames")
            s.behind = behind
        s.tracks = self.state.ids_given

    @property
    def stop_requested(self) -> bool:
        """A sink asked the run to stop (ESC in the window)."""
        return any(getattr(sink, "stop_requested", False) for sink in self.stream.sinks)


class _Lane:
    """Streams sharing one batch: their inputs gathered into slots of buffers allocated once."""

    def __init__(self, members: list[_Live], backend: Backend) -> None:
        self.members = members
        meta = backend.meta
        self.dynamic = meta.batch == 0
        self.size = meta.batch if meta.batch > 0 else len(members)
        self.direct = self.size == 1  # one slot: feed the stream's own buffers, as a Session does
        layout = members[0].state.input_layout()
        self.buffers = {name: np.zeros((self.size, *shape), dtype) for name, (shape, dtype) in layout.items()}
        self.batch: list[tuple[_Live, float]] = []  # (stream, capture time) in slot order
        self.future: Future[tuple[dict[str, np.ndarray], float]] | None = None
        self.outputs: dict[str, np.ndarray] = {}  # this lane's copy of the outputs, see _timed

    def keep(self, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy outputs out of a backend's reused buffers (TensorRT's pinned memory, Triton's shared memory): the
        next lane's call may overwrite them while this lane is still decoding. The copies are allocated once."""
        kept = {}
        for name, array in outputs.items():
            store = self.outputs.get(name)
            if store is None or store.shape[1:] != array.shape[1:] or store.dtype != array.dtype or len(store) < len(array):
                store = self.outputs[name] = np.empty((max(self.size, len(array)), *array.shape[1:]), array.dtype)
            kept[name] = store[: len(array)]
            np.copyto(kept[name], array)
        return kept

    def gather(self) -> None:
        self.batch = []
        for live in self.members:
            if live.closed:
                continue
            item = live.reader.take(wait=live.stream.policy == "none")
            if item is not None:
                # Latency counts from capture for a live frame; a file's frame waits in the read-ahead by design,
                # so its latency counts from when the loop takes it.
                since = item.time if live.stream.policy == "latest" else time.perf_counter()
                if item.resumed:  # the camera was away: its tracks ended, it starts anew
                    live.state.resume()
                live.state.prepare(item.frame)
                live.frame = item.frame
                live.gap, live.number = max(item.number - live.number, 1), item.number
                self.batch.append((live, since))

    def feed(self) -> dict[str, np.ndarray]:
        if self.direct:
            return self.batch[0][0].state.feed()
        for slot, (live, _) in enumerate(self.batch):
            for name, array in live.state.feed().items():
                np.copyto(self.buffers[name][slot : slot + 1], array)
        # A dynamic batch takes as many slots as there are frames; a fixed one runs its padding slots too.
        count = len(self.batch) if self.dynamic else self.size
        return {name: buffer[:count] for name, buffer in self.buffers.items()}


HEARTBEAT_S = 0.5  # how often the loop refreshes every stream's report and calls ``heartbeat``
# A live camera tracked at less than this share of its own rate is behind: most of its frames are dropped and
# objects move far between two tracked frames. Judged once it has run this long.
BEHIND_SHARE, BEHIND_AFTER_S = 0.5, 10.0


def _counter(stream: Stream) -> Counter | None:
    """The stream's counting, if it has lines or zones; dwell times at its source's rate (known once it opens)."""
    source = stream.source
    return Counter(stream.shapes, stream.name, lambda: source.fps, store=stream.counts_file) if stream.shapes else None


def schedule(backend: Backend, streams: list[Stream], report: RunReport, k: int = TOPK,
             tracker: TrackerConfig | None = None, max_frames: int | None = None,
             overlap: bool = True, heartbeat: Callable[[], None] | None = None) -> Iterator[Results]:
    """Track every stream to its end (or ``max_frames`` each), yielding each frame's ``Results`` once every sink of
    its stream has it. The end of the sources, ESC in a window, leaving the loop early (the generator closed), an
    error, Ctrl-C and SIGTERM/SIGHUP all end it the same way: every stream's sinks closed complete, ``report``
    filled in; a signal is recorded there and raised again. No stream giving a frame at all is an error.
    ``heartbeat`` is called from the loop every ``HEARTBEAT_S`` (every report refreshed first), also while no
    camera gives a frame: the loop is alive even when every camera is away."""
    meta = backend.meta
    arrived = threading.Event()  # set by any reader with a new frame
    lives = [_Live(stream, StreamState(meta, k, stream.tracker or tracker, counter=_counter(stream)), arrived)
             for stream in streams]
    count = lanes_for(len(lives), meta.batch, overlap)
    lanes = [_Lane(lives[i::count], backend) for i in range(count) if lives[i::count]]
    report.streams = [live.report for live in lives]
    start = time.perf_counter()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctrt-infer")
    try:
        for live in lives:
            live.reader.start()
        beat = -HEARTBEAT_S  # the first pass refreshes every report at once
        while True:
            if time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                for live in lives:
                    if not live.closed:
                        live.refresh()
                if heartbeat is not None:
                    heartbeat()
            busy = False
            for lane in lanes:
                if lane.future is not None:
                    yield from _track_batch(lane, max_frames)
                    busy = True
                if any(live.stop_requested for live in lives):
                    return
                _close_finished(lane)
                lane.gather()
                if lane.batch:
                    if len(lanes) == 1:  # nothing to overlap with: the model runs here, as a Session runs it
                        lane.future = Future()
                        lane.future.set_result(_timed(backend, lane.feed(), None))
                    else:
                        lane.future = executor.submit(_timed, backend, lane.feed(), lane)
                    report.batches += 1
                    busy = True
            if not busy:
                if all(live.closed for live in lives):
                    break
                arrived.wait(0.05)  # nothing ready: wait for a reader instead of spinning
                arrived.clear()
    except KeyboardInterrupt as exc:
        report.interrupted = exc if isinstance(exc, Interrupted) else Interrupted()
        raise report.interrupted from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        for live in lives:
            live.close()
        report.seconds = time.perf_counter() - start
    if not report.frames:
        raise CtrtError("; ".join(s.error or "no frame" for s in report.streams) if len(lives) == 1 else
                        "no stream gave a frame: " + "; ".join(f"{s.name}: {s.error or 'no frame'}"
                                                               for s in report.streams))


def _timed(backend: Backend, feed: dict[str, np.ndarray],
           lane: _Lane | None) -> tuple[dict[str, np.ndarray], float]:
    """On the inference thread: the outputs and the model's own time (not the time queued behind another lane).
    With several lanes the outputs are copied into ``lane``'s own buffers before the next call can run."""
    start = time.perf_counter()
    outputs = backend(feed)
    seconds = time.perf_counter() - start
    return (lane.keep(outputs) if lane is not None else outputs), seconds


def _track_batch(lane: _Lane, max_frames: int | None) -> Iterator[Results]:
    assert lane.future is not None
    outputs, seconds = lane.future.result()
    lane.future = None
    infer_s = seconds / max(len(lane.batch), 1)  # the batch's inference time, shared by its frames
    batch, lane.batch = lane.batch, []
    for slot, (live, captured_at) in enumerate(batch):
        tracks = live.state.track_heads({name: value[slot] for name, value in outputs.items()}, infer_s, live.gap)
        assert live.frame is not None
        results = live.state.results(live.stream.name, live.frame, tracks)
        if results.events and live.state.counter is not None:
            live.report.counts = live.state.counter.totals()
        with signals_held():  # a stop signal waits until every sink of this stream has this frame
            _write(live.stream.sinks, results)
            live.report.frames += 1
            live.report.last_frame_at = time.time()
            live.refresh()
        live.report.latency_ms.append((time.perf_counter() - captured_at) * 1e3)
        if live.report.frames == max_frames:
            live.close()
        yield results


def _write(sinks: list[Sink], results: Results) -> None:
    """One frame to every sink of its stream, or to none: a sink that fails has the text files before it take the
    frame back (the sinks put the video last), so all outputs end on the same frame."""
    done: list[Sink] = []
    try:
        for sink in sinks:
            sink.write(results)
            done.append(sink)
    except CtrtError:
        for sink in done:
            if isinstance(sink, TextSink):
                sink.undo()
        raise


def _close_finished(lane: _Lane) -> None:
    for live in lane.members:
        if not live.closed and live.reader.finished:
            live.close()
