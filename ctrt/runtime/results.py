"""``Results``: one stream frame's tracks, what every consumer of a run sees (files, the user's loop, the CLI).

The file sinks write exactly ``to_json()``, ``to_mot()`` and ``plot()``, so a program that handles ``Results`` itself
gets the same bytes and pixels as ``--save-json``, ``--save-mot`` and ``--save-video``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..classes import class_name
from .detections import Detections

if TYPE_CHECKING:
    import supervision

    from ..counting.events import CountEvent, Overlay

@dataclass
class Results:
    """The tracks of one frame of one stream.

    ``tracks`` holds every track the tracker keeps (``shown`` marks those reported this frame: matched, and past
    ``min_hits``); the array properties are its columns. ``index`` counts the stream's frames from 0::

        >>> for r in model.track("door.mp4"):
        ...     people = r[(r.classes == 1) & r.shown]
        ...     print(r.index, people.ids, people.boxes)
    """

    stream: str
    index: int
    frame: np.ndarray  # the original image (BGR, as the source gave it)
    tracks: Detections
    speed_ms: dict[str, float] = field(default_factory=dict)  # per stage: preprocess, pre_hm, infer, decode, track
    events: list[CountEvent] | None = None  # this frame's crossings, enters and leaves; None: the stream counts nothing
    overlay: Overlay | None = field(default=None, repr=False)  # its lines and zones with their totals, for plot()

    @property
    def boxes(self) -> np.ndarray:
        """[N, 4] float32 xyxy in source pixels."""
        return self.tracks.boxes

    @property
    def scores(self) -> np.ndarray:
        """[N] float32 detection scores (sigmoid of the heatmap peak)."""
        return self.tracks.scores

    @property
    def classes(self) -> np.ndarray:
        """[N] int32, 1-based as CenterTrack reports them (COCO: 1 is person)."""
        return self.tracks.classes

    @property
    def ids(self) -> np.ndarray:
        """[N] int64 track ids (from 1; ``Model.detect`` gives 0)."""
        return self.tracks.ids

    @property
    def ages(self) -> np.ndarray:
        """Frames since each track was last matched (1: matched this frame)."""
        return self.tracks.ages

    @property
    def shown(self) -> np.ndarray:
        """Reported this frame (what the video and the MOT file show)."""
        return self.tracks.shown

    @property
    def centers(self) -> np.ndarray:
        """[N, 2] float32 heatmap peaks in source pixels (where CenterTrack places each object)."""
        return self.tracks.centers

    @property
    def offsets(self) -> np.ndarray:
        """[N, 2] the tracking head's offset from each centre to the object's centre in the previous frame."""
        return self.tracks.tracking

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: np.ndarray | slice) -> Results:
        """The tracks a boolean mask (or slice) picks, on the same frame."""
        return Results(self.stream, self.index, self.frame, self.tracks[index], self.speed_ms, self.events,
                       self.overlay)

    def to_json(self) -> str:
        """The JSON-lines record ``--save-json`` writes for this frame (without the newline): CenterTrack's
        result fields for every track held, ``shown`` saying which are reported; with lines or zones, ``events``
        (``CountEvent.to_dict``)."""
        t = self.tracks
        results = [
            {"score": s, "class": c, "ct": ct, "tracking": tr, "bbox": box, "tracking_id": tid, "age": age,
             "active": act, "shown": shown}
            for s, c, ct, tr, box, tid, age, act, shown in zip(
                t.scores.tolist(), t.classes.tolist(), t.centers.tolist(), t.tracking.tolist(), t.boxes.tolist(),
                t.ids.tolist(), t.ages.tolist(), t.active.tolist(), t.shown.tolist())
        ]
        record: dict[str, object] = {"frame": self.index + 1, "results": results}
        if self.events is not None:
            record["events"] = [e.to_dict() for e in self.events]
        return json.dumps(record)

    def to_mot(self) -> str:
        """The MOTChallenge rows ``--save-mot`` writes for this frame, ``frame,id,x,y,w,h,score,-1,-1,-1`` (1-based
        frames), one line each, for the tracks reported this frame."""
        return mot_rows(self.index, self.tracks)

    def plot(self) -> np.ndarray:
        """The annotated image ``--save-video`` writes: boxes and ids of the reported tracks on a copy, and the
        stream's counting lines and zones with their totals."""
        from .annotate import annotate

        return annotate(self.frame, self.tracks, self.overlay)

    def to_supervision(self) -> supervision.Detections:
        """The reported tracks as a ``supervision.Detections`` (``pip install supervision``): ``tracker_id``,
        ``class_id`` (1-based, as here) and ``data["class_name"]``, so supervision's annotators, ``LineZone`` and
        ``PolygonZone`` work on them."""
        import supervision

        shown = self.tracks[self.tracks.shown]
        names = np.array([class_name(c) for c in shown.classes.tolist()], dtype=object)
        return supervision.Detections(xyxy=shown.boxes.astype(np.float32), confidence=shown.scores,
                                      class_id=shown.classes.astype(int), tracker_id=shown.ids.astype(int),
                                      data={"class_name": names})


def mot_rows(index: int, tracks: Detections) -> str:
    """MOTChallenge rows ``frame,id,x,y,w,h,score,-1,-1,-1`` (1-based frames) for the tracks reported this frame."""
    shown = tracks[tracks.shown]
    x1, y1, x2, y2 = shown.boxes.T
    rows = np.stack([x1, y1, x2 - x1, y2 - y1, shown.scores], axis=1)
    return "".join(f"{index + 1},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n"
                   for tid, (x, y, w, h, s) in zip(shown.ids.tolist(), rows.tolist()))
