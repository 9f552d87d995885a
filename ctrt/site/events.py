"""Track lifecycle messages of one camera: ``new``, ``update`` (at most ``rate_hz`` per track) and ``end``.

A track is ``new`` on the first frame it is reported (``Results.shown``), gets ``update`` on later reported frames
at most ``rate_hz`` times a second (0: every frame), and ``end`` on the first frame the tracker no longer holds it,
or when the run ends. Each message carries the camera's own sequence number for its topic, so a consumer sees a gap
(a message dropped while the broker was away) and drops a duplicate (a QoS 1 redelivery).

Schema ``ctrt.event/1`` (topic ``PREFIX/<camera>/events``)::

    {"schema": "ctrt.event/1", "camera": "door", "seq": 41, "event": "update", "id": 7, "class": 1,
     "label": "person", "score": 0.83, "box": [x1, y1, x2, y2], "age": 1, "frame": 120, "time": 1765090000.125,
     "first_seen": {"frame": 96, "time": ...}, "last_seen": {"frame": 120, "time": ...}}

A camera that counts also sends its ``Results.events`` on the same topic, in the same sequence: ``cross`` (``line``,
``direction`` in or out), ``enter`` and ``leave`` (``zone``; ``dwell_s`` on a leave), each with ``id``, ``class``,
``label``, ``frame``, ``time`` and ``counts``: that line's or zone's running totals by class name (and a zone's
``occupancy``), so a consumer that joins late, or a service restarted, knows the totals from one message.

``box`` is in source pixels, ``frame`` counts the camera's frames from 1 (as the JSON lines and MOT files do),
``time`` is the wall clock (seconds since the epoch) when the frame was tracked. ``end`` repeats the track's last
reported box and score. Schema ``ctrt.frame/1`` (topic ``PREFIX/<camera>/frames``): ``{"schema", "camera", "seq",
"time", "record"}`` where ``record`` is the frame's JSON-lines record (``Results.to_json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..options import default
from ..classes import class_name
from ..runtime.results import Results

EVENT_SCHEMA = "ctrt.event/1"
FRAME_SCHEMA = "ctrt.frame/1"


@dataclass
class _Track:
    state: dict[str, Any]  # the last reported id, class, score, box, age
    first_seen: dict[str, float]
    last_seen: dict[str, float]
    last_sent: float


class TrackEvents:
    """Turns a camera's successive ``Results`` into lifecycle messages (JSON text) in order."""

    def __init__(self, camera: str, rate_hz: float = default("publish_rate"), frames: bool = False) -> None:
        self.camera, self.frames = camera, frames
        self.interval = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self.tracks: dict[int, _Track] = {}
        self.seq = {"events": 0, "frames": 0}
        self.frame = 0  # the last frame seen (1-based)
        # Tracks ended because the camera went away: a frame still in flight from before never brings one back
        # (ids go on counting after a camera returns, so none of these is given again).
        self.ended: set[int] = set()

    def _message(self, topic: str, body: dict[str, Any]) -> tuple[str, str]:
        self.seq[topic] += 1
        schema = EVENT_SCHEMA if topic == "events" else FRAME_SCHEMA
        return topic, json.dumps({"schema": schema, "camera": self.camera, "seq": self.seq[topic], **body})

    def _event(self, event: str, track: _Track, now: float) -> tuple[str, str]:
        return self._message("events", {"event": event, **track.state, "frame": self.frame, "time": now,
                                        "first_seen": track.first_seen, "last_seen": track.last_seen})

    def update(self, results: Results, now: float) -> list[tuple[str, str]]:
        """The messages of one frame, as (``events`` or ``frames``, JSON) pairs."""
        self.frame = results.index + 1
        tracks = results.tracks
        held = set(tracks.ids.tolist())
        gone = [tid for tid in self.tracks if tid not in held]
        out = [self._event("end", self.tracks.pop(tid), now) for tid in gone]
        shown = tracks[tracks.shown]
        seen = {"frame": self.frame, "time": now}
        for tid, cls, score, box, age in zip(shown.ids.tolist(), shown.classes.tolist(), shown.scores.tolist(),
                                             np.round(shown.boxes, 2).tolist(), shown.ages.tolist()):
            if tid in self.ended:
                continue
            state = {"id": tid, "class": cls, "label": class_name(cls), "score": round(score, 4), "box": box,
                     "age": age}
            track = self.tracks.get(tid)
            if track is None:
                track = self.tracks[tid] = _Track(state, seen, seen, now)
                out.append(self._event("new", track, now))
                continue
            track.state, track.last_seen = state, seen
            if now - track.last_sent >= self.interval:
                track.last_sent = now
                out.append(self._event("update", track, now))
        for event in results.events or ():
            body = event.to_dict()
            name = body.pop("name")
            out.append(self._message("events", {**body, "line" if event.event == "cross" else "zone": name,
                                                "label": class_name(event.cls), "frame": self.frame, "time": now,
                                                "counts": event.totals}))
        if self.frames:  # the JSON-lines record as it is, inside the envelope
            self.seq["frames"] += 1
            head = json.dumps({"schema": FRAME_SCHEMA, "camera": self.camera, "seq": self.seq["frames"], "time": now})
            out.append(("frames", f'{head[:-1]}, "record": {results.to_json()}}}'))
        return out

    def end_all(self, now: float, away: bool = False) -> list[tuple[str, str]]:
        """``end`` for every track still held: the run ends, or (``away``) the camera went away."""
        out = [self._event("end", track, now) for track in self.tracks.values()]
        if away:
            self.ended.update(self.tracks)
        self.tracks.clear()
        return out
