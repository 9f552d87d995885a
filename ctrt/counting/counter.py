"""Counting one stream's tracks over its lines and zones, frame by frame, with a rule that jitter, flicker and id
switches do not fool.

A line counts a track when the path of its point (``Line.anchor``) between two frames crosses the segment itself
(not the infinite line) and the point then stays on the far side, at least ``margin`` pixels from the line, for
``min_frames`` tracked frames. It counts once per direction until the track has really come back. A zone counts
``enter`` once a track's point has been inside for ``min_frames`` frames, ``leave`` once it has been outside as long
(or its track ended, or its camera went away), with the time it stayed. Only reported tracks (``shown``: matched
and confirmed by the tracker's ``min_hits``) move; a track that appears within half a box height and ``LINK_FRAMES``
camera frames of where an unreported one was last seen takes over its state (an id switch is one object).

All per-frame work is array arithmetic over tracks x lines and tracks x zone edges; Python loops run only over the
frame's events and the tracks that appear or end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..classes import class_name
from .events import CountEvent, Overlay, inside as _inside
from .shapes import Line, Shape, Zone, in_pixels
from .store import CountsStore, read_counts

MIN_FRAMES = 2  # frames on the far side (or in or out of a zone) that confirm a crossing
MARGIN = 0.01  # of the frame's diagonal: how far past a line a point must be to be on its far side
LINK_FRAMES = 10  # camera frames within which a new track takes over an unreported one's state
NEVER = 1 << 62


class Tracks(Protocol):
    """The columns of a frame's tracks the counter reads (``Detections`` has them)."""

    boxes: np.ndarray  # [N, 4] xyxy source pixels
    ids: np.ndarray
    classes: np.ndarray
    shown: np.ndarray  # reported this frame: matched and confirmed


class Counter:
    """One stream's lines and zones (``shapes``), fed its tracks each frame; ``counts`` holds the totals."""

    def __init__(self, shapes: Sequence[Shape], camera: str, fps: Callable[[], float | None] = lambda: None,
                 min_frames: int = MIN_FRAMES, store: Path | None = None) -> None:
        # fps: the camera's frame rate when asked (a camera down at the start tells it once it opens), for dwell;
        # store: a counts.json to go on from and keep up to date (a service's)
        self.camera, self.fps, self.min_frames = camera, fps, min_frames
        self.lines = [s for s in shapes if isinstance(s, Line)]
        self.zones = [s for s in shapes if isinstance(s, Zone)]
        self.shapes: list[Shape] = [*self.lines, *self.zones]  # in the order of their rows and columns
        self._index = {s.name: i for i, s in enumerate(self.shapes)}
        self.counts: dict[str, dict[str, dict[str, int]]] = {
            s.name: {k: {} for k in (("in", "out") if isinstance(s, Line) else ("enter", "leave"))} for s in shapes}
        earlier = read_counts(store, camera) if store is not None else {}
        for name, kinds in self.counts.items():  # lines and zones no longer there are dropped; new ones start at 0
            for kind, per_class in kinds.items():
                per_class.update(earlier.get(name, {}).get(kind, {}))
        # Who was in a zone when the earlier run stopped is gone with its tracks: not inside now.
        self._carried = {name: _inside(kinds) for name, kinds in self.counts.items() if "enter" in kinds}
        self._store = CountsStore(store, camera) if store is not None else None
        self._size: tuple[int, int] | None = None
        self.overlay: Overlay | None = None  # made at the first frame (the shapes' pixels need its size)
        self._slot: dict[int, int] = {}  # track id -> its row in the state arrays
        self._held = np.zeros(0, np.int64)  # the ids the tracker held last frame
        self._recheck = 0  # the camera frame from which a track kept for an id switch may have expired
        self._shown_ids, self._shown_rows = np.zeros(0, np.int64), np.zeros(0, np.int64)  # last frame's reported
        self._free: list[int] = []
        # An unreported track whose row a new one took over -> that new track: if it is reported again, the two were
        # different objects after all, and it starts from the sides the row holds now (neither counts the other's
        # crossing again, and its own still counts).
        self._handed: dict[int, int] = {}
        self._frame = 0  # camera frames so far
        self._grow(32)

    # --- the state of every track, a row each -------------------------------------------------------------------
    def _grow(self, rows: int) -> None:
        lines, zones = len(self.lines), len(self.zones)
        old = getattr(self, "_ids", np.zeros(0, np.int64))
        have = len(old)

        def grown(name: str, shape: tuple[int, ...], dtype: type, fill: object = 0) -> np.ndarray:
            array: np.ndarray = np.full((rows, *shape), fill, dtype)
            if have:
                array[:have] = getattr(self, name)
            return array

        self._ids = grown("_ids", (), np.int64, -1)
        self._cls = grown("_cls", (), np.int32)
        self._last = grown("_last", (4,), np.float64)  # x, bottom y, centre y, height when last reported (POINTS)
        self._seen = grown("_seen", (), np.int64, -1)  # camera frame when last reported
        self._offset = grown("_offset", (lines,), np.float64)  # each line's o_now when last reported (see _lines)
        self._side = grown("_side", (lines,), np.int8)  # confirmed side of each line: -1, +1, 0 not yet
        self._pending = grown("_pending", (lines,), np.int16)  # frames on the far side so far
        self._crossed = grown("_crossed", (lines,), np.bool_)  # the path crossed the segment since leaving
        self._inside = grown("_inside", (zones,), np.bool_)
        self._zpending = grown("_zpending", (zones,), np.int16)
        self._entered = grown("_entered", (zones,), np.int64)  # camera frame of the enter
        self._free.extend(range(rows - 1, have - 1, -1))

    def _geometry(self, width: int, height: int) -> None:
        self._size = (width, height)
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
        margin = MARGIN * float(np.hypot(width, height))
        if self.lines:
            ends = np.stack([in_pixels(s, width, height, self.camera) for s in self.lines])  # [L, 2, 2]
            (self._ax, self._ay), (self._bx, self._by) = ends[:, 0].T, ends[:, 1].T
            self._dx, self._dy = self._bx - self._ax, self._by - self._ay
            length = np.hypot(self._dx, self._dy)
            # How far clear of the line a point must be, times the line's length (the cross products' scale); on
            # each side at most half the room the frame leaves there, so a line near an edge still counts.
            reach = (self._dx[:, None] * (corners[None, :, 1] - self._ay[:, None])
                     - self._dy[:, None] * (corners[None, :, 0] - self._ax[:, None])) / length[:, None]
            self._reach_pos = np.minimum(margin, np.maximum(reach.max(1), 0) / 2) * length
            self._reach_neg = -np.minimum(margin, np.maximum(-reach.min(1), 0) / 2) * length  # <= 0: the out side's
            self._line_bottom = _bottoms(self.lines)
            # o = dx (y - ay) - dy (x - ax) as one product with a track's POINTS, y its bottom or its centre
            bottoms = np.broadcast_to(self._line_bottom, self._dx.shape)
            self._line_weights = np.stack([-self._dy, self._dx * bottoms, self._dx * ~bottoms, np.zeros_like(self._dx)])
            self._line_constant = self._dy * self._ax - self._dx * self._ay
        if self.zones:
            polygons = [in_pixels(s, width, height, self.camera) for s in self.zones]
            sizes = [len(p) for p in polygons]
            edges = np.concatenate([np.stack([p, np.roll(p, -1, axis=0)], 1) for p in polygons])  # [E, 2, 2]
            self._zone_starts = np.cumsum([0, *sizes[:-1]])
            (x1, y1), (x2, y2) = edges[:, 0].T, edges[:, 1].T
            self._edge_y1, self._edge_y2 = y1, y2
            dy = y2 - y1
            self._edge_slope = np.divide(x2 - x1, dy, out=np.zeros_like(dy), where=dy != 0)
            self._edge_x0 = x1 - y1 * self._edge_slope  # the edge's x at y = 0: x at y is x0 + y * slope
            zone_bottom = _bottoms(self.zones)
            self._edge_bottom = zone_bottom if isinstance(zone_bottom, bool) else np.repeat(zone_bottom, sizes)
        self._line_classes = _class_table(self.lines)
        self._zone_classes = _class_table(self.zones)
        self._pixels = [in_pixels(s, width, height, self.camera) for s in self.shapes]
        self._labels = [""] * len(self.shapes)
        self._draw(range(len(self.shapes)))

    def _draw(self, changed: Iterable[int]) -> None:
        """The overlay made again with the ``changed`` shapes' labels (their counts changed), and the totals given to
        the store."""
        if self._store is not None:
            self._store.save({name: {k: dict(v) for k, v in kinds.items()} for name, kinds in self.counts.items()})
        for index in changed:
            shape = self.shapes[index]
            kinds = self.counts[shape.name]
            if isinstance(shape, Line):
                self._labels[index] = f"{shape.name} in {sum(kinds['in'].values())} out {sum(kinds['out'].values())}"
            else:
                self._labels[index] = (f"{shape.name} {sum(_inside(kinds, self._carried[shape.name]).values())} "
                                       f"inside, {sum(kinds['enter'].values())} entered")
        self.overlay = Overlay(tuple(zip((s.kind for s in self.shapes), self._pixels, self._labels)))

    # --- a frame ----------------------------------------------------------------------------------------------------
    def update(self, tracks: Tracks, frame_shape: tuple[int, ...], gap: int = 1) -> list[CountEvent]:
        """This frame's events from its tracks (``gap`` camera frames after the previous frame tracked)."""
        if self._size is None:
            self._geometry(frame_shape[1], frame_shape[0])
        self._frame += gap
        events: list[CountEvent] = []
        held = tracks.ids
        if self._frame >= self._recheck or len(held) != len(self._held) or (held != self._held).any():
            self._end_gone(held, events)  # only when the tracks held change, or a track kept for an id switch expires
            self._held = held.copy()
        shown = tracks.shown
        if shown.all():
            self._reported(tracks.boxes, tracks.ids, tracks.classes, events)
        elif shown.any():
            self._reported(tracks.boxes[shown], tracks.ids[shown], tracks.classes[shown], events)
        if events:
            self._draw({self._index[e.name] for e in events})
        return events

    def _reported(self, boxes: np.ndarray, ids: np.ndarray, classes: np.ndarray, events: list[CountEvent]) -> None:
        points = boxes @ POINTS  # [N, 4]
        if len(ids) == len(self._shown_ids) and (ids == self._shown_ids).all():
            rows = self._shown_rows  # the same tracks as last frame: the same rows
        else:
            rows = self._rows(ids, classes, points)
            self._shown_ids, self._shown_rows = ids.copy(), rows
        if self.lines:
            self._lines(rows, points, classes, events)
        if self.zones:
            self._zones(rows, points, classes, events)
        self._last[rows] = points
        self._seen[rows] = self._frame
        self._cls[rows] = classes

    def _lines(self, rows: np.ndarray, points: np.ndarray, classes: np.ndarray, events: list[CountEvent]) -> None:
        # > 0: right of the line as drawn (its in side); times the line's length
        o_now = points @ self._line_weights + self._line_constant  # [N, L]
        o_before = self._offset[rows]  # the same at the track's last point (a fresh row's: never used)
        # The step from before to now crosses the segment: its ends on either side of the line or on it (rare: only
        # then is the rest worked out), and the line's ends on either side of the step.
        hit = o_now * o_before <= 0
        if hit.any():
            ax, ay = self._ax, self._ay
            last = self._last[rows]
            px, py = points[:, 0:1], _anchored(self._line_bottom, points[:, 1], points[:, 2])
            bx, by = last[:, 0:1], _anchored(self._line_bottom, last[:, 1], last[:, 2])
            sx, sy = px - bx, py - by
            hit &= ((sx * (ay - by) - sy * (ax - bx)) * (sx * (self._by - by) - sy * (self._bx - bx)) <= 0) \
                & (self._seen[rows] >= 0)[:, None]
        current = (o_now >= self._reach_pos).view(np.int8) - (o_now <= self._reach_neg).view(np.int8)
        side = self._side[rows]
        turn = current * side  # < 0: clear of the line on the far side; > 0: back home; 0: on it, or no side yet
        away = turn < 0
        # Back where it was confirmed (or no side yet): that attempt is over.
        crossed = (self._crossed[rows] | hit) & (turn <= 0) & (side != 0)
        pending = (self._pending[rows] + 1) * away
        side = side + current * (side == 0)  # a new track's first side clear of the line counts nothing
        confirm = away & (pending >= self.min_frames)
        if confirm.any():
            counted = confirm & crossed
            if self._line_classes is not None:
                counted &= self._line_classes[np.minimum(classes, MAX_CLASS)]
            for n, line in zip(*np.nonzero(counted)):
                self._count(events, "cross", self.lines[line].name, int(self._ids[rows[n]]),
                            int(self._cls[rows[n]]), "in" if current[n, line] > 0 else "out")
            # Confirmed on the far side: counted if its path crossed the segment, silently if it went round an end.
            side = np.where(confirm, current, side)
            pending[confirm] = 0
            crossed &= ~confirm
        self._side[rows], self._pending[rows], self._crossed[rows] = side, pending, crossed
        self._offset[rows] = o_now

    def _zones(self, rows: np.ndarray, points: np.ndarray, classes: np.ndarray, events: list[CountEvent]) -> None:
        px, py = points[:, 0:1], _anchored(self._edge_bottom, points[:, 1], points[:, 2])  # against every edge [E]
        spans = (self._edge_y1 > py) != (self._edge_y2 > py)
        crossing = spans & (px < py * self._edge_slope + self._edge_x0)
        inside_now = np.logical_xor.reduceat(crossing, self._zone_starts, axis=1)  # [N, Z]: odd crossings
        inside, pending = self._inside[rows], self._zpending[rows]
        change = inside_now != inside
        pending = (pending + 1) * change
        flip = change & (pending >= self.min_frames)
        if flip.any():
            counted = flip if self._zone_classes is None else flip & self._zone_classes[np.minimum(classes, MAX_CLASS)]
            for n, zone in zip(*np.nonzero(counted)):
                row = rows[n]
                if inside_now[n, zone]:
                    self._entered[row, zone] = self._frame
                    self._count(events, "enter", self.zones[zone].name, int(self._ids[row]), int(self._cls[row]))
                else:
                    self._leave(events, row, zone)
            self._inside[rows] = np.where(flip, inside_now, inside)
            pending[flip] = 0
        self._zpending[rows] = pending

    # --- tracks that appear, end, or the camera going away ------------------------------------------------------
    def _rows(self, ids: np.ndarray, classes: np.ndarray, points: np.ndarray) -> np.ndarray:
        rows = np.fromiter((self._slot.get(i, -1) for i in ids.tolist()), np.int64, len(ids))
        for n in np.nonzero(rows < 0)[0]:
            rows[n] = self._new_row(int(ids[n]), int(classes[n]), float(points[n, 0]), float(points[n, 2]), rows)
        return rows

    def _new_row(self, track: int, cls: int, x: float, centre: float, taken: np.ndarray) -> int:
        """A row for a new track: an unreported track's, when it was last seen near here lately (an id switch),
        else a fresh one."""
        recent = (self._seen >= 0) & (self._frame - self._seen <= LINK_FRAMES) & (self._seen < self._frame)
        recent[taken[taken >= 0]] = False
        candidates = np.nonzero(recent)[0]
        if len(candidates):
            distance = np.hypot(self._last[candidates, 0] - x, self._last[candidates, 2] - centre)
            best = int(np.argmin(distance))
            if distance[best] <= 0.5 * self._last[candidates[best], 3]:
                row = int(candidates[best])
                old = int(self._ids[row])
                del self._slot[old]
                self._handed[old] = track
                self._ids[row] = track
                self._slot[track] = row
                return row
        if not self._free:
            self._grow(2 * len(self._ids))
        row = self._free.pop()
        self._ids[row], self._cls[row], self._seen[row] = track, cls, -1
        taker = self._slot.get(self._handed.pop(track, -1))
        self._side[row] = 0 if taker is None else self._side[taker]
        self._pending[row], self._crossed[row] = 0, False
        self._inside[row], self._zpending[row] = False, 0
        self._slot[track] = row
        return row

    def _end_gone(self, held: np.ndarray, events: list[CountEvent]) -> None:
        """Tracks the tracker no longer holds leave their zones; their rows are freed once no new track can take
        them over."""
        self._recheck = NEVER
        if self._handed:  # a track the tracker let go cannot be reported again
            holding = set(held.tolist())
            for old in [old for old in self._handed if old not in holding]:
                del self._handed[old]
        if not self._slot:
            return
        known = np.fromiter(self._slot.keys(), np.int64, len(self._slot))
        for track in known[~np.isin(known, held)].tolist():
            row = self._slot[track]
            if self._frame - self._seen[row] > LINK_FRAMES or self._seen[row] < 0:
                self._end_row(row, events)
            else:
                self._recheck = min(self._recheck, int(self._seen[row]) + LINK_FRAMES + 1)

    def _end_row(self, row: int, events: list[CountEvent]) -> None:
        for zone in np.nonzero(self._inside[row])[0]:
            if self._zone_classes is None or self._zone_classes[min(int(self._cls[row]), MAX_CLASS), zone]:
                self._leave(events, row, int(zone))
        del self._slot[int(self._ids[row])]
        self._ids[row], self._seen[row] = -1, -1
        self._inside[row] = False
        self._free.append(row)
        self._shown_ids = self._shown_ids[:0]  # rows changed hands: look them up again

    def resume(self) -> list[CountEvent]:
        """The camera was away: every track it had ended, so each one in a zone leaves it, once."""
        events: list[CountEvent] = []
        for row in list(self._slot.values()):
            self._end_row(row, events)
        if events:
            self._draw({self._index[e.name] for e in events})
        return events

    def _leave(self, events: list[CountEvent], row: int, zone: int) -> None:
        frames, fps = self._frame - int(self._entered[row, zone]), self.fps()
        self._count(events, "leave", self.zones[zone].name, int(self._ids[row]), int(self._cls[row]),
                    dwell_s=frames / fps if fps else None)

    def _count(self, events: list[CountEvent], event: str, name: str, track: int, cls: int,
               direction: str | None = None, dwell_s: float | None = None) -> None:
        kinds = self.counts[name]
        label = class_name(cls)
        kinds[direction or event][label] = kinds[direction or event].get(label, 0) + 1
        events.append(CountEvent(event, name, track, cls, direction, dwell_s, self._totals_of(name)))

    def _totals_of(self, name: str) -> dict[str, dict[str, int]]:
        kinds = self.counts[name]
        copied = {k: dict(v) for k, v in kinds.items()}
        return {**copied, "occupancy": _inside(kinds, self._carried[name])} if name in self._carried else copied

    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """``counts`` copied (safe to keep), each zone's with its ``occupancy`` now."""
        return {name: self._totals_of(name) for name in self.counts}

    def occupancy(self) -> dict[str, dict[str, int]]:
        """Who is in each zone now, by class name."""
        return {zone.name: _inside(self.counts[zone.name], self._carried[zone.name]) for zone in self.zones}

    def close(self) -> None:
        """The totals written (a service's), the writer stopped."""
        if self._store is not None:
            self._store.close()


MAX_CLASS = 1000  # class numbers above count as this one in the class tables
# xyxy boxes @ POINTS: the points a track is counted by, and its height: x, bottom y, centre y, height
POINTS = np.array([[0.5, 0, 0, 0], [0, 0, 0.5, -1], [0.5, 0, 0, 0], [0, 1, 0.5, 1]])


def _anchored(bottoms: bool | np.ndarray, bottom: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Each point's y for each shape (or edge): [N, 1] when they all take the same anchor, else [N, S]."""
    if isinstance(bottoms, bool):
        return (bottom if bottoms else centre)[:, None]
    return np.where(bottoms, bottom[:, None], centre[:, None])


def _bottoms(shapes: Sequence[Shape]) -> bool | np.ndarray:
    """Whether each shape counts a box's bottom centre: one bool when they agree, else per shape."""
    flags = np.array([s.anchor == "bottom" for s in shapes])
    return bool(flags[0]) if (flags == flags[0]).all() else flags


def _class_table(shapes: Sequence[Shape]) -> np.ndarray | None:
    """[MAX_CLASS + 1, S] bool: whether shape s counts class c; None when every shape counts every class."""
    if all(shape.classes is None for shape in shapes):
        return None
    table = np.ones((MAX_CLASS + 1, len(shapes)), bool)
    for s, shape in enumerate(shapes):
        if shape.classes is not None:
            table[:, s] = False
            table[[min(c, MAX_CLASS) for c in shape.classes], s] = True
    return table
