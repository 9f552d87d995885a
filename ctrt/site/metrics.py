"""The Prometheus text of ``/metrics``: per camera frames, drops, skips, reconnects, FPS, active tracks, latency,
stage times, state and counts (lines by direction and class, zones' enters, leaves and occupancy); the MQTT
publisher's counters when the run publishes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ..runtime.reports import RunReport
from ..runtime.sources import STATES

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONDITIONS = (*STATES, "stale")  # a camera's states as /metrics, /readyz and the page show them


class CameraCounters(Protocol):
    """What the HTTP endpoint counts per camera on the tracking thread."""

    tracks: int
    counts: np.ndarray  # per latency bucket, the last one beyond them
    latency_sum: float
    stage_sum: dict[str, float]


def metrics_text(report: RunReport, cameras: Mapping[str, CameraCounters], stale_after: float,
                 publisher: Any = None) -> bytes:
    """``publisher``: the run's ``MqttPublisher``, or None."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class Collector:
        def collect(self) -> Any:
            per = [("frames", "frames tracked", "frames"), ("dropped", "stale frames dropped to stay live",
                                                               "dropped"),
                   ("skipped", "unreadable frames skipped", "skipped"),
                   ("reconnects", "times a live source was reopened", "reconnects")]
            for name, text, attr in per:
                family = CounterMetricFamily(f"ctrt_{name}", text, labels=["camera"])
                for stream in report.streams:
                    family.add_metric([stream.name], getattr(stream, attr))
                yield family
            fps = GaugeMetricFamily("ctrt_fps", "frames per second of the camera's run", labels=["camera"])
            active = GaugeMetricFamily("ctrt_tracks_active", "tracks reported on the last frame",
                                       labels=["camera"])
            latency = HistogramMetricFamily("ctrt_latency_seconds", "capture to tracks", labels=["camera"])
            stages = CounterMetricFamily("ctrt_stage_seconds", "time per stage, summed over frames",
                                         labels=["camera", "stage"])
            for stream in report.streams:
                camera = cameras[stream.name]
                fps.add_metric([stream.name], stream.fps)
                active.add_metric([stream.name], camera.tracks)
                cumulative = np.cumsum(camera.counts).tolist()
                buckets = [(str(b), c) for b, c in zip(LATENCY_BUCKETS_S, cumulative)]
                latency.add_metric([stream.name], [*buckets, ("+Inf", cumulative[-1])], camera.latency_sum)
                for stage, seconds in camera.stage_sum.items():
                    stages.add_metric([stream.name, stage], seconds)
            yield from (fps, active, latency, stages)
            up = GaugeMetricFamily("ctrt_camera_up", "1 while the camera delivers frames (live, not stale)",
                                   labels=["camera"])
            state = GaugeMetricFamily("ctrt_camera_state", "1 for the state the camera is in",
                                      labels=["camera", "state"])
            since = GaugeMetricFamily("ctrt_seconds_since_frame", "seconds since the camera's last tracked frame",
                                      labels=["camera"])
            down = CounterMetricFamily("ctrt_down_seconds", "time the camera spent reconnecting", labels=["camera"])
            behind = GaugeMetricFamily("ctrt_camera_behind", "1 while the camera is tracked at less than half its "
                                       "own rate", labels=["camera"])
            now = time.time()
            for stream in report.streams:
                condition = stream.condition(stale_after, now)
                up.add_metric([stream.name], float(condition == "live"))
                for name in CONDITIONS:
                    state.add_metric([stream.name, name], float(condition == name))
                if stream.last_frame_at:
                    since.add_metric([stream.name], now - stream.last_frame_at)
                down.add_metric([stream.name], stream.down_s)
                behind.add_metric([stream.name], float(stream.behind))
            yield from (up, state, since, down, behind)
            crossed = CounterMetricFamily("ctrt_line_crossings", "tracks that crossed a counting line",
                                          labels=["camera", "line", "direction", "class"])
            zoned = CounterMetricFamily("ctrt_zone_events", "tracks that entered or left a counting zone",
                                        labels=["camera", "zone", "event", "class"])
            inside = GaugeMetricFamily("ctrt_zone_occupancy", "tracks in a counting zone now",
                                       labels=["camera", "zone", "class"])
            for stream in report.streams:
                for shape, kinds in stream.counts.items():
                    for kind, per_class in kinds.items():
                        for cls, count in per_class.items():
                            if kind in ("in", "out"):
                                crossed.add_metric([stream.name, shape, kind, cls], count)
                            elif kind == "occupancy":
                                inside.add_metric([stream.name, shape, cls], count)
                            else:
                                zoned.add_metric([stream.name, shape, kind, cls], count)
            yield from (crossed, zoned, inside)
            if publisher is not None:
                published = publisher.report
                for name, value, text in (("sent", published.sent, "messages acknowledged by the broker"),
                                          ("dropped", published.dropped, "messages dropped from a full buffer")):
                    family = CounterMetricFamily(f"ctrt_mqtt_{name}", text)
                    family.add_metric([], value)
                    yield family
                queued = GaugeMetricFamily("ctrt_mqtt_queued", "messages waiting or unacknowledged")
                queued.add_metric([], publisher.queued)
                yield queued

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    data: bytes = generate_latest(registry)
    return data

