"""The lines and zones a camera counts with, as a user writes them, checked once for every face.

A line is ``NAME:X1,Y1,X2,Y2`` and a zone ``NAME:X1,Y1,X2,Y2,X3,Y3,...`` (on the command line, in a site file's
camera, in Python), or a ``Line``/``Zone`` (which also choose the point of a box that counts and the classes).
Coordinates are source pixels, or fractions of the frame's width and height when every one lies in [0, 1], so one
site file serves cameras of different resolutions. A line counts ``in`` when a track crosses it from the left to the
right as seen walking from its first point to its second (drawn left to right: downwards), ``out`` the other way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import CtrtError
from ..classes import COCO_NAMES

ANCHORS = ("bottom", "center")  # the bottom centre of a box (where a person stands) or its centre
MAX_POINTS = 64
MAX_NAME = 64


@dataclass(frozen=True)
class _Shape:
    name: str
    points: tuple[tuple[float, float], ...]
    anchor: str = "bottom"  # the point of a box that counts: "bottom" (centre) or "center"
    classes: tuple[int, ...] | None = None  # the 1-based classes counted; None: all
    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class Line(_Shape):
    """A counting line: ``points`` its two ends."""

    kind: ClassVar[str] = "line"


@dataclass(frozen=True)
class Zone(_Shape):
    """A counting zone: ``points`` its corners in order (a simple polygon)."""

    kind: ClassVar[str] = "zone"


Shape = Line | Zone
ShapeSpec = str | Mapping[str, object] | Shape


def parse_shape(kind: str, spec: object, camera: str) -> Shape:
    """A ``Line`` or ``Zone`` (``kind``) from its string, its table (name, points, anchor, classes) or itself,
    checked; a ``CtrtError`` naming the camera, the value and the option (``lines``/``zones``) otherwise."""
    cls: type[Line] | type[Zone] = Line if kind == "line" else Zone

    def refuse(why: str) -> CtrtError:
        return CtrtError(f"{camera}: {kind} {_shown(spec)}: {why}", option=f"{kind}s")

    name: object
    raw: object
    anchor: object
    classes: object
    if isinstance(spec, (Line, Zone)):
        if spec.kind != kind:
            raise refuse(f"a {spec.kind}, given as a {kind}")
        name, raw, anchor, classes = spec.name, spec.points, spec.anchor, spec.classes
    elif isinstance(spec, str):
        name, _, coords = spec.partition(":")
        try:
            numbers = [float(v) for v in coords.split(",")] if coords.strip() else []
        except ValueError:
            raise refuse(f"write it NAME:{'X1,Y1,X2,Y2' if kind == 'line' else 'X1,Y1,X2,Y2,X3,Y3,...'} "
                         "(numbers)") from None
        if len(numbers) % 2:
            raise refuse("an odd count of coordinates (x,y pairs are needed)")
        raw, anchor, classes = tuple(zip(numbers[::2], numbers[1::2])), "bottom", None
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "points", "anchor", "classes"}
        if unknown:
            raise refuse(f"unknown key {sorted(unknown)[0]!r} (name, points, anchor, classes)")
        name, raw = spec.get("name"), spec.get("points")
        anchor, classes = spec.get("anchor", "bottom"), spec.get("classes")
    else:
        raise refuse(f"give NAME:X1,Y1,... or a {cls.__name__}")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or \
            not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in name):
        raise refuse(f"name it with up to {MAX_NAME} ASCII letters, digits, '-', '_' and '.' (it names metrics and "
                     "MQTT messages)")
    points = _points(raw, refuse)
    if kind == "line" and len(points) != 2:
        raise refuse(f"a line has 2 points, not {len(points)}")
    if kind == "zone":
        if not 3 <= len(points) <= MAX_POINTS:
            raise refuse(f"a zone has 3 to {MAX_POINTS} points, not {len(points)}")
        if _self_crossing(points):
            raise refuse("its edges cross each other: give the corners in order around it")
        if _area(points) == 0:
            raise refuse("its points enclose no area")
    elif points[0] == points[1]:
        raise refuse("its two points are the same")
    if anchor not in ANCHORS:
        raise refuse(f"anchor {anchor!r}: use {' or '.join(ANCHORS)}")
    return cls(name, points, str(anchor), _classes(classes, refuse))


def _shown(spec: object) -> str:
    return repr(spec if isinstance(spec, str) else getattr(spec, "name", spec))


def _points(raw: object, refuse) -> tuple[tuple[float, float], ...]:  # type: ignore[no-untyped-def]
    if not isinstance(raw, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in raw):
        raise refuse("points: give [[x, y], ...]")
    points = []
    for x, y in raw:
        if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, (int, float)) or \
                not isinstance(y, (int, float)) or not (math.isfinite(x) and math.isfinite(y)):
            raise refuse(f"point ({x!r}, {y!r}): give finite numbers")
        if x < 0 or y < 0:
            raise refuse(f"point ({x:g}, {y:g}) is outside the frame (coordinates start at 0)")
        points.append((float(x), float(y)))
    return tuple(points)


def _classes(classes: object, refuse) -> tuple[int, ...] | None:  # type: ignore[no-untyped-def]
    if classes is None:
        return None
    if isinstance(classes, (str, int)):
        classes = [classes]
    if not isinstance(classes, (list, tuple)) or not classes:
        raise refuse("classes: give class names or 1-based numbers")
    ids = []
    for c in classes:
        if isinstance(c, str) and c in COCO_NAMES:
            ids.append(COCO_NAMES.index(c) + 1)
        elif isinstance(c, int) and not isinstance(c, bool) and c >= 1:
            ids.append(c)
        else:
            raise refuse(f"class {c!r}: not a COCO class name or a 1-based class number")
    return tuple(sorted(set(ids)))


def _area(points: Sequence[tuple[float, float]]) -> float:
    xy = np.asarray(points)
    return float(abs(np.dot(xy[:, 0], np.roll(xy[:, 1], -1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], -1))) / 2)


def _self_crossing(points: Sequence[tuple[float, float]]) -> bool:
    """Whether two edges of the polygon that are not neighbours touch."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _segments_meet(*edges[i], *edges[j]):
                return True
    return False


def _segments_meet(a, b, c, d) -> bool:  # type: ignore[no-untyped-def]
    def orient(p, q, r) -> float:  # type: ignore[no-untyped-def]
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    def on(p, q, r) -> bool:  # type: ignore[no-untyped-def]
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0) and 0 not in (o1, o2, o3, o4):
        return True
    return any(o == 0 and on(p, q, r) for o, p, q, r in ((o1, a, b, c), (o2, a, b, d), (o3, c, d, a), (o4, c, d, b)))


def shapes_for(camera: str, lines: object = None, zones: object = None) -> tuple[Shape, ...]:
    """A camera's lines then zones, each checked, names unique among them."""
    shapes: list[Shape] = []
    for kind, given in (("line", lines), ("zone", zones)):
        if given is None:
            continue
        if isinstance(given, (str, Mapping, Line, Zone)) or not isinstance(given, (list, tuple)):
            given = [given]
        for spec in given:
            shape = parse_shape(kind, spec, camera)
            if any(s.name == shape.name for s in shapes):
                raise CtrtError(f"{camera}: {kind} {shape.name!r}: a line or zone of this camera has this name",
                                option=f"{kind}s")
            shapes.append(shape)
    return tuple(shapes)


def in_pixels(shape: Shape, width: int, height: int, camera: str) -> np.ndarray:
    """``shape``'s points in pixels of a ``width`` x ``height`` frame ([P, 2] float64); a point outside it is
    refused (``CtrtError`` naming the camera and the shape)."""
    xy = np.asarray(shape.points, np.float64)
    if (xy <= 1).all():
        return xy * (width, height)
    if (xy[:, 0] > width).any() or (xy[:, 1] > height).any():
        raise CtrtError(f"{camera}: {shape.kind} {shape.name!r}: a point lies outside the {width}x{height} frame",
                        option=f"{shape.kind}s")
    return xy
