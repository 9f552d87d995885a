"""The per-frame tracker loop above any backend: pre-process, pre_hm, inference, decode, track.

``StreamState`` is one camera's share of it (its tracker, previous frame and pre_hm, its stage times); a
``Session`` feeds one state's own buffers to the backend, frame by frame from the caller's own capture, and the
scheduler (``streams.py``) gathers several states into the slots of one batch. Both run the same per-stream code, so
a stream's tracks do not depend on how it was batched.
"""

from __future__ import annotations

import math
import secrets
import time
from numbers import Real
from typing import Any, cast

import numpy as np

from ..artifacts import ArtifactMeta
from ..counting.counter import Counter
from ..counting.events import CountEvent
from ..counting.shapes import Shape
from ..errors import CtrtError
from .backends.base import Backend
from .decode import TOPK, Decoder, decode_topk
from .detections import Detections
from .frames import bgr_frame
from .prehm import PreHeatmapRenderer
from .preprocess import FrameGeometry, Preprocessor
from .timing import RUN_KEEP, StageTimes
from .results import Results
from .tracker_protocol import TrackerLike, TrackerSource, make_tracker, takes_gap

STAGES = ("preprocess", "pre_hm", "infer", "decode", "track")


class StreamState:
    """CenterTrack's ``Detector.run`` + ``Tracker.step`` state for one camera, every buffer allocated once.

    ``prepare`` fills this frame's inputs (batch of one), ``track_heads`` decodes this stream's outputs and tracks.
    The current and previous image buffers swap after each frame instead of being copied. A stateful Triton model
    (inputs ``frame``, ``pre_boxes``, ``sequence``) keeps the previous frame itself: this stream sends its camera
    frame, last frame's boxes in input pixels for the server to draw, and its sequence id (new after a reset).
    """

    def __init__(self, meta: ArtifactMeta, k: int = TOPK, tracker: TrackerSource = None,
                 keep_times: int | None = RUN_KEEP, counter: Counter | None = None) -> None:
        h, w = meta.input_size
        self.counter = counter  # the stream's lines and zones, if it counts
        self._gap = 1  # camera frames between the last two frames tracked
        self._ended: list[CountEvent] = []  # leaves of the tracks a reset ended, for the next frame's events
        self.inputs = meta.inputs
        # Fast-path exports do the letterbox and/or the top-K inside the graph; the sidecar says which.
        self.source_hw = meta.graph.source_size if meta.graph else None
        self.decode_in_graph = bool(meta.graph and meta.graph.decode_in_graph)
        self.preprocess = Preprocessor(h, w, meta.mean, meta.std)
        self.renderer = PreHeatmapRenderer(h, w)
        self.tracker = make_tracker(tracker)
        self.tells_gap = takes_gap(self.tracker)
        self.threshold = self.tracker.decode_floor
        self.decoder = Decoder.for_meta(meta, k, self.threshold)
        self.image = np.empty((1, 3, h, w), np.float32)
        self.pre_img = np.empty((1, 3, h, w), np.float32)
        self.pre_hm = np.zeros((1, 1, h, w), np.float32)
        self.pre_boxes = np.zeros((1, meta.graph.topk if meta.graph and meta.graph.topk else k, 5), np.float32)
        self.sequence = np.zeros(1, np.uint64)
        self._new_sequence()
        self._frame: np.ndarray | None = None
        self._previous_frame: np.ndarray | None = None
        self.times = StageTimes(STAGES, keep_times)
        self._durations = np.zeros(len(STAGES))
        self._geometry: FrameGeometry | None = None
        self.frames = 0
        self.fresh = True  # the next frame is its own previous frame
        self.ids_given = 0  # the highest track id so far: how many the tracker gave out

    def reset(self) -> None:
        """Forget every track and the previous frame: the next frame is a first frame again."""
        self.tracker.reset()
        self._previous_frame = None
        self.frames = 0
        self.fresh = True
        self.ids_given = 0
        self._new_sequence()
        self._end_counted()

    def resume(self) -> None:
        """A camera back after being away: its tracks end and the next frame is a first frame, but frame numbers
        and track ids go on counting (no id of the run is given twice)."""
        given = getattr(self.tracker, "next_id", None)  # the built-in tracker's counter; a user's keeps its own
        self.tracker.reset()
        if given is not None:
            self.tracker.next_id = given  # type: ignore[attr-defined]
        self._previous_frame = None
        self.fresh = True
        self._new_sequence()
        self._end_counted()

    def _end_counted(self) -> None:
        if self.counter is not None:
            self._ended += self.counter.resume()

    def _new_sequence(self) -> None:
        self.sequence[0] = secrets.randbits(63) | 1  # Triton correlation ids: unique among live ones, never 0

    def prepare(self, frame: np.ndarray) -> None:
        clock = time.perf_counter
        t0 = clock()
        if self.source_hw is None:
            self._geometry = self.preprocess(frame, self.image[0])
        else:
            if frame.shape[:2] != self.source_hw:
                raise CtrtError(f"this model pre-processes {self.source_hw[1]}x{self.source_hw[0]} frames in its graph; "
                                f"the source gives {frame.shape[1]}x{frame.shape[0]} (export it again for that "
                                "source size)")
            self._geometry = self.preprocess.geometry_for(frame)
            self._frame = frame[None]
        t1 = clock()
        if "pre_hm" in self.inputs:
            self.renderer.render(self.tracker.pre_hm_boxes()[0], self._geometry.to_input, self.pre_hm[0, 0])
        elif "pre_boxes" in self.inputs:
            boxes, scores = self.tracker.pre_hm_boxes()
            rows = self.pre_boxes[0]
            count = min(len(boxes), len(rows))  # active tracks come from this frame's top-K: at most K
            rows.fill(0)  # score 0: an empty row
            rows[:count, :4] = self.renderer.to_input(boxes[:count], self._geometry.to_input)
            rows[:count, 4] = scores[:count]
        self._durations[0], self._durations[1] = t1 - t0, clock() - t1

    def input_layout(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Per model input: the shape of one frame's slot and its dtype (for the batch buffers of several streams)."""
        image = (self.image.shape[1:], self.image.dtype)
        frame = ((*self.source_hw, 3), np.dtype(np.uint8)) if self.source_hw is not None else image
        layout = {"image": image, "pre_img": image, "frame": frame, "pre_frame": frame,
                  "pre_hm": (self.pre_hm.shape[1:], self.pre_hm.dtype),
                  "pre_boxes": (self.pre_boxes.shape[1:], self.pre_boxes.dtype), "sequence": ((), self.sequence.dtype)}
        return {name: layout[name] for name in self.inputs}

    def feed(self) -> dict[str, np.ndarray]:
        """This frame's model inputs as [1, ...] arrays (the same array objects frame after frame, swapped)."""
        if self.source_hw is None:
            # The first frame is its own previous frame. Feeding the same array (not a copy into pre_img) also tells
            # the TensorRT backend, which skips uploading a pre_img it has just seen, that this one is new.
            previous_image = self.image if self.fresh else self.pre_img
            tensors: dict[str, np.ndarray] = {"image": self.image, "pre_img": previous_image, "pre_hm": self.pre_hm}
        else:
            assert self._frame is not None
            previous = self._frame if self._previous_frame is None else self._previous_frame
            tensors = {"frame": self._frame, "pre_frame": previous, "pre_hm": self.pre_hm,
                       "pre_boxes": self.pre_boxes, "sequence": self.sequence}
        return {name: tensors[name] for name in self.inputs}

    def detect(self, heads: dict[str, np.ndarray]) -> Detections:
        """This frame's detections from its heads (unbatched), before tracking."""
        assert self._geometry is not None
        if self.decode_in_graph:
            return decode_topk(heads, self._geometry, self.threshold)
        return self.decoder(heads, self._geometry)

    def track_heads(self, heads: dict[str, np.ndarray], infer_s: float, gap: int = 1) -> Detections:
        """Decode this stream's heads (unbatched), track ``gap`` camera frames after the previous frame tracked,
        and make this frame the next one's previous frame."""
        clock = time.perf_counter
        t0 = clock()
        dets = self.detect(heads)
        t1 = clock()
        tracks = cast(Any, self.tracker).step(dets, gap) if self.tells_gap else self.tracker.step(dets)
        t2 = clock()
        if len(tracks):
            self.ids_given = max(self.ids_given, int(tracks.ids.max()))
        if self.source_hw is None:
            self.image, self.pre_img = self.pre_img, self.image
        else:
            self._previous_frame = self._frame
        self.frames += 1
        self.fresh = False
        self._gap = gap
        self._durations[2:] = (infer_s, t1 - t0, t2 - t1)
        self.times.add(self._durations * 1e3)
        return tracks

    def results(self, name: str, frame: np.ndarray, tracks: Detections) -> Results:
        """This frame's ``Results``, with its stage times and, when the stream counts, its events."""
        events, overlay = None, None
        if self.counter is not None:
            events, self._ended = [*self._ended, *self.counter.update(tracks, frame.shape, self._gap)], []
            overlay = self.counter.overlay
        return Results(name, self.frames - 1, frame, tracks, dict(zip(STAGES, (self._durations * 1e3).tolist())),
                       events, overlay)


class Session:
    """One stream on one backend, fed by the caller: ``results = session.update(frame)``::

        >>> session = ctrt.load("model.onnx").session(tracker="robust")
        >>> for frame in frames:
        ...     r = session.update(frame)
    """

    def __init__(self, backend: Backend, k: int = TOPK, tracker: TrackerSource = None,
                 keep_times: int | None = RUN_KEEP, name: str = "session", fps: float | None = None,
                 shapes: tuple[Shape, ...] = ()) -> None:
        if backend.meta.batch not in (0, 1):
            raise CtrtError(f"this model has a fixed batch of {backend.meta.batch}; one stream needs batch 1 "
                            "(export it with batch 1 or a dynamic batch)")
        self.backend, self.name, self.fps = backend, name, fps
        counter = Counter(shapes, name, lambda: self.fps) if shapes else None
        self.stream = StreamState(backend.meta, k, tracker, keep_times, counter)
        self._last_timestamp: float | None = None

    @property
    def tracker(self) -> TrackerLike:
        """The stream's tracker (its ``tracks`` are the live ones, kept ones included)."""
        return self.stream.tracker

    @property
    def times(self) -> StageTimes:
        """Every frame's stage times so far (the last ``keep_times`` of them)."""
        return self.stream.times

    @property
    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """Each line's crossings by direction (in, out) and zone's enters and leaves, by class name, so far; and
        ``occupancy``: who is in each zone now. Empty without lines or zones."""
        counter = self.stream.counter
        return {} if counter is None else counter.totals()

    def reset(self) -> None:
        """Forget every track and the previous frame: the next frame starts the stream anew (a scene cut)."""
        self.stream.reset()
        self._last_timestamp = None

    def update(self, frame: np.ndarray, timestamp: float | None = None) -> Results:
        """Track one BGR frame (any size; a fast-path model: its source size; gray and BGRA are converted) and
        return its ``Results``. ``timestamp``: when the camera took it, in seconds (with the session's ``fps``):
        a loop that keeps only some of the camera's frames tells the tracker how far its objects could move;
        without it every update is the camera's next frame. A frame refused leaves the session as it was."""
        gap = self._gap(timestamp)
        frame = bgr_frame(frame)
        self.stream.prepare(frame)
        t0 = time.perf_counter()
        outputs = self.backend(self.stream.feed())
        infer_s = time.perf_counter() - t0
        tracks = self.stream.track_heads({name: value[0] for name, value in outputs.items()}, infer_s, gap)
        if timestamp is not None:
            self._last_timestamp = timestamp
        return self.stream.results(self.name, frame, tracks)

    def _gap(self, timestamp: float | None) -> int:
        """Camera frames since the previous update: the time between them at the camera's rate, at least one."""
        if timestamp is None:
            return 1
        if self.fps is None:
            raise CtrtError("update(frame, timestamp=...) needs the camera's frame rate: model.session(fps=...)",
                            option="fps")
        if isinstance(timestamp, bool) or not isinstance(timestamp, Real) or not math.isfinite(timestamp):
            raise CtrtError(f"timestamp {timestamp!r}: give the capture time in seconds", option="timestamp")
        if self._last_timestamp is None:
            return 1
        if timestamp <= self._last_timestamp:
            raise CtrtError(f"timestamp {timestamp:g} is not after the previous frame's {self._last_timestamp:g}",
                            option="timestamp")
        return max(round((timestamp - self._last_timestamp) * self.fps), 1)
