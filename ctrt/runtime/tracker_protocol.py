"""What a tracker must do to run in ctrt's loop, so a user's tracker (an IoU tracker, BoxMOT's ByteTrack or OC-SORT
behind an adapter) can take the built-in one's place on ctrt's detections::

    >>> class MyTracker:
    ...     decode_floor = 0.3                       # the lowest detection score it wants
    ...     def step(self, detections): ...          # -> the tracks (``Detections`` with ids), ``shown`` set
    ...     # or step(self, detections, gap): also told the camera frames since the previous update
    ...     def pre_hm_boxes(self): ...              # -> (boxes, scores) CenterTrack draws into the next pre_hm
    ...     def reset(self): ...
    >>> model.track("door.mp4", tracker=MyTracker)   # a class or factory: one tracker per stream
    >>> model.session(tracker=MyTracker())           # an instance: this session's

``examples/iou_tracker.py`` is one, written against this protocol alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol, Union, runtime_checkable

import numpy as np

from ..errors import CtrtError
from .detections import Detections
from .tracker import Tracker, TrackerConfig, resolve_tracker


@runtime_checkable
class TrackerLike(Protocol):
    """One stream's tracker. ``step`` gets a frame's detections in descending score (boxes in image pixels,
    ``tracking``: each centre's offset to the previous frame, ``ids`` 0) and returns the tracks it holds, with ids
    (1 and up) and ``shown`` marking those reported this frame. ``pre_hm_boxes`` are the boxes (xyxy, image
    pixels) and scores the model sees as the previous frame's objects; an empty pair is a valid answer."""

    @property
    def decode_floor(self) -> float:
        """The lowest detection score it wants (the decoder drops the rest)."""

    def step(self, detections: Detections) -> Detections: ...

    def pre_hm_boxes(self) -> tuple[np.ndarray, np.ndarray]: ...

    def reset(self) -> None: ...


TrackerFactory = Callable[[], TrackerLike]
# What a stream's tracker is made from: the built-in one's settings, a user's tracker, or a factory of them.
TrackerSource = Union[TrackerConfig, TrackerLike, TrackerFactory, None]


def make_tracker(source: TrackerSource) -> TrackerLike:
    """A tracker for one stream: the built-in one for settings (CenterTrack's for None), a user's instance as it is,
    a factory's new one."""
    if source is None or isinstance(source, TrackerConfig):
        return Tracker(source)
    if isinstance(source, TrackerLike):
        return source
    made = source()
    if not isinstance(made, TrackerLike):
        raise CtrtError(f"tracker: {source!r} made a {type(made).__name__}, which lacks step, pre_hm_boxes, reset "
                        "or decode_floor", option="tracker")
    return made


def takes_gap(tracker: TrackerLike) -> bool:
    """Whether ``step`` takes a second argument, ``gap``: the camera frames since the previous update (1 when the
    loop tracks every frame). The built-in tracker does; a user's ``step(detections)`` is called as it is."""
    try:
        parameters = inspect.signature(tracker.step).parameters
    except (TypeError, ValueError):  # a step without a signature (a C extension): called the plain way
        return False
    return "gap" in parameters


def is_user_tracker(value: object) -> bool:
    """A user's tracker or a factory of them (as opposed to a preset name, a spec or ``TrackerConfig``)."""
    return isinstance(value, TrackerLike) or (callable(value) and not isinstance(value, (str, TrackerConfig)))


def tracker_source(spec: object, threshold: float | None = None) -> TrackerSource:
    """What ``tracker=`` and ``threshold=`` of the Python API mean together: a preset or spec string (the threshold
    its track threshold), a ``TrackerConfig``, or the caller's tracker or factory."""
    if is_user_tracker(spec):
        return spec  # type: ignore[return-value]
    if not isinstance(spec, (str, TrackerConfig)):
        raise CtrtError(f"tracker {spec!r}: give a preset or spec (centertrack, robust, 'robust,gate=1'), a "
                        "TrackerConfig, or a tracker (see ctrt.TrackerLike)", option="tracker")
    return resolve_tracker(spec, threshold)
