"""The Python API: ``ctrt.load(model)`` gives a ``Model``; ``Model.track(sources)`` runs the tracker over cameras,
videos, folders or URLs as a ``Run`` of ``Results``; ``Model.session()`` tracks frames the caller captures itself.

The command line is a client of these calls: ``ctrt run M -s A -s B --save-dir D`` is
``ctrt.load(M).track([A, B], save_dir=D)`` with a progress display attached.
"""

from __future__ import annotations

import logging
import math
import os
import time
import weakref
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Union

import numpy as np

from .artifacts import ArtifactMeta, sidecar_path
from .errors import CtrtError, Interrupted
from .outputs import OutputLocks, check_outputs
from .runtime.backends.base import Backend
from .runtime.decode import TOPK
from .runtime.pipeline import Session, StreamState
from .runtime.results import Results
from .runtime.runner import CHECKPOINT_SUFFIXES, model_notes, open_backend
from .runtime.sinks import VIDEO_SUFFIXES, JsonLinesSink, MotSink, Sink, VideoSink, WindowSink, segment_path
from .runtime.sources import FrameSource, source_files
from .runtime.streams import (RunReport, Stream, StreamReport, batch_note, open_streams, save_paths, schedule,
                              stream_names)
from .runtime.tracker import TRACK_THRESH, TrackerConfig, resolve_tracker
from .service.http import HttpOptions, LiveServer
from .service.mqtt import MqttOptions, MqttPublisher
from .service.systemd import ServiceWatch, SystemdNotifier
from .shutdown import stop_on_signals
from .sizes import check_memory, parse_input_size

log = logging.getLogger("ctrt")
# Intra-op threads beyond a few per core only contend for the cores (100000 of them never reach a first frame).
MAX_THREADS_PER_CORE = 4

SourceSpec = Union[str, int, Path, FrameSource]
Sources = Union[SourceSpec, Sequence[SourceSpec], Mapping[str, SourceSpec]]
TrackerSpec = Union[str, TrackerConfig]


def load(model: str | Path, *, device: str = "auto", threads: int = 0, input_size: str | tuple[int, int] | None = None,
         allow_partial: bool = False, cuda_graph: bool = False, shm: bool = False, reconnects: int = 5,
         transport: str | None = None) -> Model:
    """Open a model by its type: ``.onnx`` (ONNX Runtime), ``.engine`` (TensorRT), ``.pth`` (PyTorch, at
    ``input_size``, default 512x512) or ``triton://HOST:PORT/NAME`` / ``http://HOST:PORT/NAME`` (Triton)::

        >>> model = ctrt.load("export/demo_256x256.onnx", device="cpu")
        >>> model.meta.input_size
        (256, 256)

    ``device``: auto, cpu, cuda (ONNX Runtime also tensorrt); ``threads``: ONNX Runtime's intra-op threads (0: all
    cores); ``cuda_graph``: replay a TensorRT engine as a CUDA graph; ``shm``/``reconnects``: a Triton model on this
    host through shared memory, and how often to reconnect to its server; ``transport``: how frames travel to a
    stateful Triton model (``ctrt triton --stateful``), ``raw`` (default) or ``jpeg[:QUALITY]`` (default 90).
    """
    cores = os.cpu_count() or 1
    if not 0 <= threads <= MAX_THREADS_PER_CORE * cores:
        raise CtrtError(f"threads {threads}: give 0 (all cores) to {MAX_THREADS_PER_CORE * cores} "
                        f"({MAX_THREADS_PER_CORE} per core; this machine has {cores})", option="threads")
    local = None if "://" in str(model) else Path(model)
    is_checkpoint = local is not None and local.suffix.lower() in CHECKPOINT_SUFFIXES
    hw = parse_input_size(input_size if isinstance(input_size, str) else "x".join(map(str, input_size or (512, 512))))
    if is_checkpoint:
        check_memory(*hw)
    backend = open_backend(model, device, threads, hw, allow_partial, cuda_graph=cuda_graph, shm=shm,
                           reconnects=reconnects, notify=log.warning, transport=transport)
    if input_size is not None and backend.meta.input_size != hw:
        backend.__exit__(None, None, None)
        h, w = backend.meta.input_size
        raise CtrtError(f"input_size {hw[0]}x{hw[1]}: {model} takes {h}x{w} (an exported model carries its own size)",
                        option="input_size")
    return Model(backend, str(model))


class Model:
    """A model ready to track: its backend, the artifact's ``meta`` and the ``notes`` its user should read (random
    weights, the built-in demo model, INT8 on a CPU whose kernels saturate). Closing it releases the backend::

        >>> with ctrt.load("model.onnx") as model:
        ...     print(model.name, model.meta.input_size, model.notes)
    """

    def __init__(self, backend: Backend, path: str) -> None:
        self.backend, self.path = backend, path
        self.meta: ArtifactMeta = backend.meta
        self.notes: list[str] = model_notes(backend)
        self._detector: tuple[int, float, StreamState] | None = None

    @property
    def name(self) -> str:
        """The backend it runs on, e.g. ``onnxruntime (CPU)``."""
        return self.backend.name

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend (device memory, sessions, connections)."""
        self.backend.__exit__(None, None, None)

    def session(self, *, tracker: str | TrackerConfig = "centertrack", topk: int = TOPK,
                threshold: float | None = None, name: str = "session") -> Session:
        """A tracker for frames the caller captures itself: ``r = session.update(frame)`` per frame::

            >>> session = model.session(tracker="robust")
            >>> r = session.update(frame)

        ``tracker``: a preset (centertrack, robust), a spec like ``"robust,gate=1"``, or a ``TrackerConfig``;
        ``threshold``: the score from which detections are reported and start tracks (default 0.3).
        """
        return Session(self.backend, _topk(topk), resolve_tracker(tracker, threshold), name=name)

    def detect(self, image: np.ndarray, *, topk: int = TOPK, threshold: float = TRACK_THRESH) -> Results:
        """Detection alone: the image is its own previous frame and ``pre_hm`` is empty (track ids are 0)::

            >>> r = model.detect(cv2.imread("street.jpg"))
            >>> r.boxes, r.scores, r.classes
        """
        if self._detector is None or self._detector[:2] != (topk, threshold):
            config = TrackerConfig.from_options(threshold)
            self._detector = (topk, threshold, StreamState(self.meta, _topk(topk), config))
        state = self._detector[2]
        state.reset()
        t0 = time.perf_counter()
        state.prepare(image)
        t1 = time.perf_counter()
        outputs = self.backend(state.feed())
        t2 = time.perf_counter()
        detections = state.detect({name: value[0] for name, value in outputs.items()})
        speed = {"preprocess": t1 - t0, "infer": t2 - t1, "decode": time.perf_counter() - t2}
        return Results("image", 0, image, detections, {k: v * 1e3 for k, v in speed.items()})

    def track(self, source: Sources, *, tracker: TrackerSpec | Mapping[str, TrackerSpec] = "centertrack",
              topk: int = TOPK, threshold: float | None = None, drop: str | None | Mapping[str, str | None] = None,
              max_frames: int | None = None, save_dir: str | Path | None | Mapping[str, str | Path | None] = None,
              save_video: str | Path | None = None, save_mot: str | Path | None = None,
              save_json: str | Path | None = None, show: bool = False, overlap: bool = True, reconnects: int = 5,
              segment: float | None = None, publish: str | MqttOptions | None = None,
              published: Collection[str] | None = None, http: str | HttpOptions | None = None, systemd: bool = True,
              protect: Sequence[str | Path] = ()) -> Run:
        """Track one source or several, batched on this model; iterate the ``Run`` for one ``Results`` per stream
        frame, in each stream's order::

            >>> with model.track(["0", "door.mp4"], save_dir="runs/site") as run:
            ...     for r in run:
            ...         print(r.stream, r.index, r.ids)
            >>> run.report.exit_status
            0

        ``source``: a camera index, video file, image folder, glob, URL or GStreamer pipeline (or an opened
        ``FrameSource``), a list of them, or a mapping of stream names to them.
        ``drop``: ``latest`` keeps only a live source's newest frame when behind, ``none`` every frame (the
        defaults for cameras and files). ``save_dir``: per stream ``<name>.mp4``, ``.txt`` (MOT) and ``.jsonl``;
        ``save_video``/``save_mot``/``save_json``/``show``: the same for one source. ``segment``: write each video as
        numbered files of that many seconds (``v-00000.mp4``, ...), so that a crash loses at most one segment
        (default: one file). ``tracker``, ``drop`` and ``save_dir`` may be mappings of stream names to each stream's
        own (the others get the defaults; a stream without a folder is not saved). ``publish``:
        ``mqtt://HOST[:PORT]/PREFIX`` (or ``MqttOptions``) sends the track events of every stream (or of the streams
        named in ``published``) to an MQTT broker (``ctrt/service/events.py``); ``http``: ``PORT`` or ``HOST:PORT``
        (or ``HttpOptions``) serves metrics, health and the live view (``ctrt/service/http.py``); ``systemd``: when
        ``NOTIFY_SOCKET`` is set, tell systemd when every stream is tracking and that the loop is alive. Every output
        is checked before
        the run and is complete however the run ends (its end, ``break``, an exception, Ctrl-C, SIGTERM); none may
        replace the model, a source, or a file of ``protect`` (the caller's other inputs).
        """
        k = _topk(topk)
        if max_frames is not None and max_frames < 1:
            raise CtrtError(f"max_frames {max_frames}: give 1 or more", option="max_frames")
        named, inputs = _named_sources(source)
        config, own_trackers = _trackers(tracker, threshold, named)
        for option, value in (("drop", drop), ("save_dir", save_dir), ("published", published)):
            for name in value if isinstance(value, (Mapping, Collection)) and not isinstance(value, (str, Path)) \
                    else ():
                if name not in named:
                    raise CtrtError(f"{option}: no stream is named {name!r}", option=option)
        folders = {name: _folder(save_dir, name) for name in named}
        single = {"save_video": save_video, "save_mot": save_mot, "save_json": save_json}
        if (len(named) > 1 or any(folders.values())) and (any(single.values()) or show):
            raise CtrtError("save_dir: with several sources (or save_dir) each stream gets its own video, MOT and "
                            "JSON-lines file there, instead of save_video, save_mot, save_json or show",
                            option="save_dir")
        if segment is not None and not (math.isfinite(segment) and 1 <= segment <= 86_400):
            raise CtrtError(f"segment {segment:g}: give seconds from 1 to 86400", option="segment")
        video = Path(save_video) if save_video is not None else None
        if video is not None and video.suffix.lower() not in VIDEO_SUFFIXES:
            raise CtrtError(f"save_video {video}: name it .mp4 (mp4v) or .avi (MJPG)", option="save_video")
        if any(folders.values()):
            planned = {f"save_dir {folder}: {path.name}": path for name, folder in folders.items()
                       if folder is not None for path in save_paths(folder, name)}
        else:
            planned = {label: Path(path) for label, path in single.items() if path is not None}
        if segment is not None:  # the first segment stands for the series in the checks and the lock
            planned = {label: segment_path(p, 0) if p.suffix.lower() in VIDEO_SUFFIXES else p
                       for label, p in planned.items()}
        local = None if "://" in self.path else Path(self.path)
        check_outputs(planned, [*((local, sidecar_path(local)) if local else ()), *inputs, *map(Path, protect)])

        service = Service()

        def sinks_for(name: str, fps: float) -> list[Sink]:
            # Text first, the video last: a frame a text file refuses (a full disk) is taken back from the text
            # files before it, and has not reached the video, so every output ends on the same frame. Published
            # after them: only frames every file holds.
            publisher = service.publisher
            published_sinks: list[Sink] = [publisher.sink(name)] if publisher is not None and (
                published is None or name in published) else []
            folder = folders[name]
            if folder is not None:
                video_path, mot_path, json_path = save_paths(folder, name)
                return [MotSink(mot_path), JsonLinesSink(json_path), VideoSink(video_path, fps, segment),
                        *published_sinks]
            sinks: list[Sink] = []
            if save_mot is not None:
                sinks.append(MotSink(Path(save_mot)))
            if save_json is not None:
                sinks.append(JsonLinesSink(Path(save_json)))
            if video is not None:
                sinks.append(VideoSink(video, fps, segment))
            return [*sinks, *published_sinks, *([WindowSink()] if show else [])]

        options = MqttOptions(publish) if isinstance(publish, str) else publish
        report = RunReport([StreamReport(name) for name in named])
        served = HttpOptions(http) if isinstance(http, str) else http
        locks = OutputLocks(planned)
        try:
            if options is not None:
                service.publisher = MqttPublisher(options).start()
            if served is not None:  # every camera asked for: one that does not open shows as stale
                service.server = LiveServer(served, list(named), report, service.publisher).start()
            streams = open_streams(named, drop, reconnects, sinks_for, own_trackers)
            report.streams = [StreamReport(s.name) for s in streams]
        except BaseException:
            service.close(report)
            locks.release()
            raise
        note = batch_note(self.meta.batch, len(streams))
        if note:
            log.warning(note)
        notifier = SystemdNotifier() if systemd else None
        if notifier is not None and notifier.enabled:
            service.watch = ServiceWatch(notifier, [s.name for s in streams])
        return Run(self, streams, k, config, max_frames, overlap, locks, report, service)


class Run:
    """A tracking run: an iterator of ``Results`` (one per stream frame) and a context manager. ``report`` has,
    per stream, frames, dropped, skipped, reconnects, track ids, FPS, latency percentiles and whether it was lost,
    and the run's ``exit_status``; it is final once the run is exhausted or closed.

    Leaving early (``break``, an exception in the loop body, Ctrl-C, SIGTERM/SIGHUP) closes every output complete:
    use ``with model.track(...) as run:`` or call ``run.close()`` to have that happen at once::

        >>> with model.track("door.mp4", save_mot="door.txt") as run:
        ...     for r in run:
        ...         print(r.index, len(r), r.ids)
        >>> run.report.exit_status
        0
    """

    def __init__(self, model: Model, streams: list[Stream], topk: int, tracker: TrackerConfig,
                 max_frames: int | None, overlap: bool, locks: OutputLocks, report: RunReport,
                 service: Service) -> None:
        self.model, self.tracker = model, tracker
        self.streams = [s.name for s in streams]
        # Frames the run will give when every source is a file of known length (for a progress bar), else None.
        totals = [min(s.source.total, max_frames or s.source.total) for s in streams
                  if s.source.total and not s.source.live]
        self.expected_frames = sum(totals) if len(totals) == len(streams) else None
        self._sinks = [sink for stream in streams for sink in stream.sinks]
        self.report = report
        self.http_url = service.server.url if service.server is not None else None
        started = [False]
        self._results = _results(model.backend, streams, self.report, started, topk, tracker, max_frames, overlap,
                                 service.watchers())
        # A run dropped without close() (an exception in a loop without ``with``) still closes its outputs: when it
        # is collected, or at the latest when the interpreter exits.
        self._finalizer = weakref.finalize(self, _close, self._results, streams, started, locks, service,
                                           self.report)

    @property
    def outputs(self) -> list[Path]:
        """The files the run has written so far (every segment of a segmented video)."""
        return [path for sink in self._sinks for path in sink.paths]

    def __iter__(self) -> Iterator[Results]:
        return self

    def __next__(self) -> Results:
        return next(self._results)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if isinstance(exc, KeyboardInterrupt) and self.report.interrupted is None:
            self.report.interrupted = exc if isinstance(exc, Interrupted) else Interrupted()
        self.close()

    def close(self) -> None:
        """End the run now: every stream's outputs closed complete, the report final."""
        self._finalizer()


class Service:
    """What a run serves beside its files: the MQTT publisher, the HTTP endpoint, systemd's watch."""

    def __init__(self) -> None:
        self.publisher: MqttPublisher | None = None
        self.server: LiveServer | None = None
        self.watch: ServiceWatch | None = None

    def watchers(self) -> list[Callable[[Results], None]]:
        """What sees each ``Results`` on the tracking thread (each only counts or hands over)."""
        return [w for w in (self.server, self.watch) if w is not None]

    def close(self, report: RunReport) -> None:
        try:
            if self.server is not None:
                self.server.close()
        finally:
            if self.publisher is not None:  # after the sinks: every track has ended
                report.published = self.publisher.close()


def _results(backend: Backend, streams: list[Stream], report: RunReport, started: list[bool], topk: int,
             tracker: TrackerConfig, max_frames: int | None, overlap: bool,
             watchers: list[Callable[[Results], None]]) -> Generator[Results, None, None]:
    started[0] = True
    with stop_on_signals():  # SIGTERM/SIGHUP end the run as Ctrl-C does (main thread only)
        for results in schedule(backend, streams, report, topk, tracker, max_frames, overlap):
            for watcher in watchers:
                watcher(results)
            yield results


def _close(results: Generator[Results, None, None], streams: list[Stream], started: list[bool],
           locks: OutputLocks, service: Service, report: RunReport) -> None:
    if service.watch is not None:
        service.watch.stopping()
    try:
        results.close()
        if not started[0]:  # the loop never ran: the sources opened for it are closed here
            for stream in streams:
                stream.source.close()
    finally:
        try:
            service.close(report)
        finally:
            locks.release()


def _trackers(tracker: TrackerSpec | Mapping[str, TrackerSpec], threshold: float | None,
              named: Mapping[str, object]) -> tuple[TrackerConfig, dict[str, TrackerConfig]]:
    """The run's tracker, and the streams' own where ``tracker`` maps stream names to them."""
    if not isinstance(tracker, Mapping):
        return resolve_tracker(tracker, threshold), {}
    unknown = [name for name in tracker if name not in named]
    if unknown:
        raise CtrtError(f"tracker: no stream is named {unknown[0]!r}", option="tracker")
    return resolve_tracker("centertrack", threshold), {n: resolve_tracker(t, threshold) for n, t in tracker.items()}


def _folder(save_dir: str | Path | None | Mapping[str, str | Path | None], stream: str) -> Path | None:
    """The folder a stream's files go to, if any."""
    folder = save_dir.get(stream) if isinstance(save_dir, Mapping) else save_dir
    return Path(folder) if folder is not None else None


def _topk(k: int) -> int:
    if not 1 <= k <= 3840:
        raise CtrtError(f"topk {k}: give 1 to 3840 (TensorRT's TopK limit)", option="topk")
    return k


def _named_sources(source: Sources) -> tuple[dict[str, str | FrameSource], list[Path]]:
    """Stream names for the sources (a mapping's keys, else short names made from the specs), and every file they
    read (which no output may replace)."""
    if isinstance(source, Mapping):
        items = [(str(name), spec) for name, spec in source.items()]
    else:
        specs = list(source) if isinstance(source, Sequence) and not isinstance(source, str) else [source]
        items = list(zip(stream_names([s.spec if isinstance(s, FrameSource) else str(s) for s in specs]), specs))
    if not items:
        raise CtrtError("source: give at least one camera index, file, folder, glob or URL", option="source")
    named = {name: spec if isinstance(spec, FrameSource) else str(spec) for name, spec in items}
    return named, [p for spec in named.values() if isinstance(spec, str) for p in source_files(spec)]
