"""Executing a ``RunPlan`` on a loaded model: its outputs checked and locked, its broker, HTTP endpoint and systemd
watch started, its sources opened, then a ``Run`` that yields one ``Results`` per stream frame and closes every
output complete however it ends. Every face (``Model.track``, ``Site.track``, ``ctrt run``) runs through here."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from .errors import Interrupted
from .options import default
from .outputs import OutputLocks
from .plan import RunPlan
from .runtime.backends.base import Backend
from .runtime.reports import RunReport, StreamReport
from .runtime.results import Results
from .runtime.scheduler import Stream, schedule
from .runtime.sinks import JsonLinesSink, MotSink, Sink, VideoSink, WindowSink
from .runtime.recordings import Retention
from .runtime.sources import FrameSource
from .runtime.stream_setup import StreamPlan, batch_note, open_streams
from .runtime.user_sinks import SharedSink
from .shutdown import stop_on_signals
from .site.http import LiveServer
from .site.mqtt import MqttPublisher
from .site.systemd import ServiceWatch, SystemdNotifier

log = logging.getLogger("ctrt")


class Loaded(Protocol):
    """What a run needs of a loaded model (``ctrt.Model``)."""

    backend: Backend
    path: str
    notes: list[str]

    @property
    def name(self) -> str: ...

    def close(self) -> None: ...


class RunServices:
    """What a run serves beside its files: the MQTT publisher, the HTTP endpoint, systemd's watch."""

    def __init__(self, report: RunReport, stale_after: float) -> None:
        self.report, self.stale_after = report, stale_after
        self.publisher: MqttPublisher | None = None
        self.server: LiveServer | None = None
        self.watch: ServiceWatch | None = None
        self.retention: Retention | None = None

    def watchers(self) -> list[Callable[[Results], None]]:
        """What sees each ``Results`` on the tracking thread (each only counts or hands over)."""
        return [w for w in (self.server, self.watch) if w is not None]

    def heartbeat(self) -> None:
        """The tracking loop is alive (called by it, frames or not)."""
        for watcher in (self.server, self.watch):
            if watcher is not None:
                watcher.tick()
        if self.publisher is not None:
            self.publisher.tick(self.report, self.stale_after)

    def close(self, report: RunReport) -> None:
        try:
            if self.retention is not None:
                self.retention.stop()
            if self.server is not None:
                self.server.close()
        finally:
            if self.publisher is not None:  # after the sinks: every track has ended
                report.published = self.publisher.close()


def start_run(model: Loaded, plan: RunPlan, owns_model: bool = False) -> Run:
    """Run ``plan`` on ``model`` (closed with the run when ``owns_model``)."""
    plan.check_outputs(model.path)
    report = RunReport([StreamReport(s.name) for s in plan.streams])
    services = RunServices(report, plan.http.stale_after if plan.http else default("stale_after"))
    user = [SharedSink(sink) for sink in plan.sinks]
    locks = OutputLocks(plan.outputs())

    def sinks_for(stream: StreamPlan, source: FrameSource) -> list[Sink]:
        # Text first, the video last: a frame a text file refuses (a full disk) is taken back from the text files
        # before it, and has not reached the video, so every output ends on the same frame. The caller's sinks and
        # the broker after them: only frames every file holds. A live source's segments are cut by wall time.
        fps, wall = source.fps, source.live
        if stream.files is not None:
            video, mot, json_lines = stream.files
            files: list[Sink] = [MotSink(mot), JsonLinesSink(json_lines), VideoSink(video, fps, plan.segment, wall)]
        else:
            files = [*([MotSink(plan.save_mot)] if plan.save_mot else []),
                     *([JsonLinesSink(plan.save_json)] if plan.save_json else []),
                     *([VideoSink(plan.save_video, fps, plan.segment, wall)] if plan.save_video else [])]
        publisher = services.publisher
        published = [publisher.sink(stream.name)] if publisher is not None and stream.publish else []
        return [*files, *(shared.share() for shared in user), *published, *([WindowSink()] if plan.show else [])]

    try:
        if plan.publish is not None:
            services.publisher = MqttPublisher(plan.publish).start()
        if plan.http is not None:  # every camera asked for: one that does not open shows as stale
            services.server = LiveServer(plan.http, [s.name for s in plan.streams], report,
                                         services.publisher).start()
        streams = open_streams(plan.streams, sinks_for)
        report.streams = [StreamReport(s.name) for s in streams]
        if plan.keep_days is not None or plan.max_gb is not None:
            writing = [sink for stream in streams for sink in stream.sinks]
            services.retention = Retention(plan.recording_folders, plan.keep_days, plan.max_gb,
                                           lambda: {p for sink in writing for p in sink.paths[-1:]}).start()
    except BaseException:
        _end(user, services, report, locks, model if owns_model else None)
        raise
    note = batch_note(model.backend.meta.batch, len(streams))
    if note:
        log.warning(note)
    notifier = SystemdNotifier() if plan.systemd else None
    if notifier is not None and notifier.enabled:
        services.watch = ServiceWatch(notifier, report, services.stale_after)
    return Run(model, streams, plan, locks, report, services, user, owns_model)


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

    def __init__(self, model: Loaded, streams: list[Stream], plan: RunPlan, locks: OutputLocks, report: RunReport,
                 services: RunServices, user: list[SharedSink], owns_model: bool) -> None:
        self.model, self.plan = model, plan
        self.streams = [s.name for s in streams]
        # Frames the run will give when every source is a file of known length (for a progress bar), else None.
        totals = [min(s.source.total, plan.max_frames or s.source.total) for s in streams
                  if s.source.total and not s.source.live]
        self.expected_frames = sum(totals) if len(totals) == len(streams) else None
        self._sinks = [sink for stream in streams for sink in stream.sinks]
        self.report = report
        self.http_url = services.server.url if services.server is not None else None
        started = [False]
        self._results = _results(model.backend, streams, report, started, plan, services)
        # A run dropped without close() (an exception in a loop without ``with``) still closes its outputs: when it
        # is collected, or at the latest when the interpreter exits.
        self._finalizer = weakref.finalize(self, _close, self._results, streams, started, locks, services, report,
                                           user, model if owns_model else None)

    @property
    def counts(self) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
        """Per stream that counts, ``Session.counts``: each line's crossings by direction and each zone's enters,
        leaves and occupancy, by class name, as of the last frame given."""
        return {s.name: s.counts for s in self.report.streams if s.counts}

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


def _results(backend: Backend, streams: list[Stream], report: RunReport, started: list[bool], plan: RunPlan,
             services: RunServices) -> Generator[Results, None, None]:
    started[0] = True
    watchers = services.watchers()
    with stop_on_signals():  # SIGTERM/SIGHUP end the run as Ctrl-C does (main thread only)
        for results in schedule(backend, streams, report, plan.topk, None, plan.max_frames, plan.overlap,
                                services.heartbeat):
            for watcher in watchers:
                watcher(results)
            yield results


def _close(results: Generator[Results, None, None], streams: list[Stream], started: list[bool],
           locks: OutputLocks, services: RunServices, report: RunReport, user: list[SharedSink],
           model: Loaded | None) -> None:
    if services.watch is not None:
        services.watch.stopping()
    try:
        results.close()
        if not started[0]:  # the loop never ran: the sources opened for it are closed here
            for stream in streams:
                stream.source.close()
    finally:
        _end(user, services, report, locks, model)


def _end(user: list[SharedSink], services: RunServices, report: RunReport, locks: OutputLocks,
         model: Any) -> None:
    """What every ending closes, each even if one before it fails: the caller's sinks (those no stream held),
    the services, the locks, and a model the run opened itself."""
    try:
        for shared in user:
            shared.close()
    finally:
        try:
            services.close(report)
        finally:
            try:
                locks.release()
            finally:
                if model is not None:
                    model.close()
