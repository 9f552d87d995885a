"""CenterTrack's tracker: associate detections to tracks by the predicted previous-frame centre.

Greedy mode reproduces CenterTrack exactly; ``hungarian`` solves the same gated cost matrix optimally (the
CenterTrack-HarDNet fork's version of that path is broken: it treats scipy's tuple as an array).

``step(dets, gap)`` is told how many camera frames passed since the previous update: 1 when every frame is tracked,
3 when a loop slower than the camera took every third. ``max_age``, velocities and coasting are per camera frame, so
a track is kept as long and moves as far in a second whatever the loop's rate; what counts against a track unseen
(its distance penalty, its widening gate) is per update it was missed, each one a chance it was not found. At a
gap of 1 every setting works exactly as at the camera's rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import CtrtError
from ..options import OPTIONS, TRACKER_OPTIONS, check, default
from .detections import Detections, intersection_matrix

TRACK_THRESH: float = default("track_thresh")  # CenterTrack's (also its new_thresh and pre_thresh unless given)

INVALID = 1e18
MATCH_LIMIT = 1e16
AGE_PENALTY = 3.0  # --coast: a track's distance grows by this share for every update it went unseen
VELOCITY_MEMORY = 0.9  # per update: weight of a track's velocity against the newest offset (exponential average)
GATE_GROWTH = 0.05  # --gate: an unseen track's gate widens by this share per update missed, up to CenterTrack's
GATE_SIGMAS = 4.0  # --gate: the gate never closes below this many times the typical miss of matched detections
HIDDEN = 0.5  # --coast: a kept track this much covered by a nearer matched one is hidden, and does not age
RESIDUAL_MEMORY = 0.98  # per update: weight of the residual estimate so far against the newest frame's


@dataclass(frozen=True)
class TrackerConfig:
    """CenterTrack's tracker by default; ``coast`` and ``low_thresh`` (with ``max_age``) are ctrt's additions::

        >>> ctrt.TrackerConfig(max_age=30, coast=True)  # or a preset: ctrt.tracker_preset("robust", gate=1.0)
    """

    new_thresh: float = TRACK_THRESH  # unmatched detections above this start a track
    pre_thresh: float = TRACK_THRESH  # tracks at or above this are drawn into pre_hm
    max_age: int = -1  # an unmatched track is kept while unseen for fewer camera frames; -1 keeps none (CenterTrack)
    hungarian: bool = False
    # A kept track moves on by its smoothed velocity (CenterTrack's stands still), and counts for less the longer
    # it goes unseen, so it cannot take a detection from a track seen last frame. While it is mostly covered by a
    # nearer matched track it does not age: a person walking behind a companion is hidden, not gone.
    coast: bool = False
    low_thresh: float | None = None  # BYTE: detections between this and track_thresh may continue leftover tracks
    track_thresh: float = TRACK_THRESH  # detections above this associate first and are shown
    min_hits: int = 1  # a track is reported from its min_hits-th matched frame on, or in the first min_hits (SORT's)
    # A detection continues a track only within gate x sqrt(box area) (CenterTrack: 1, a whole box away): one seen
    # last frame is rarely far from where the detection says it was, and a wide gate lets a person stepping out
    # from behind another take the other's track. The gate opens beyond this when the model's tracking offsets
    # miss by more (GATE_SIGMAS x their measured spread).
    gate: float = 1.0

    @property
    def decode_floor(self) -> float:
        """The lowest score the decoder keeps: the threshold, or BYTE's lower one for leftover tracks."""
        return self.track_thresh if self.low_thresh is None else min(self.low_thresh, self.track_thresh)

    @classmethod
    def from_options(cls, track_thresh: float = TRACK_THRESH, pre_thresh: float | None = None,
                     new_thresh: float | None = None, max_age: int | None = None, hungarian: bool | None = None,
                     preset: str = "centertrack", coast: bool | None = None,
                     low_thresh: float | None = None, min_hits: int | None = None,
                     gate: float | None = None) -> TrackerConfig:
        """A preset, then the options given (None: the preset's). CenterTrack's rule for thresholds: each is
        max(track_thresh, its own value), its own value unset by default."""
        base = preset_config(preset)
        given = {name: check(name, value) for name, value in (
            ("track_thresh", track_thresh), ("pre_thresh", pre_thresh), ("new_thresh", new_thresh),
            ("low_thresh", low_thresh), ("max_age", max_age), ("hungarian", hungarian), ("coast", coast),
            ("min_hits", min_hits), ("gate", gate))}
        track_thresh = given.pop("track_thresh")
        low = given.pop("low_thresh")
        low = low if low is not None else base.low_thresh
        if low is not None and low >= track_thresh:
            raise CtrtError(f"low_thresh {low:g} must be below the track threshold {track_thresh:g}",
                            option="low_thresh")
        own = {name: value for name, value in given.items() if value is not None}
        return replace(base, **{**own, "new_thresh": max(track_thresh, own.get("new_thresh", 0.0)),
                                "pre_thresh": max(track_thresh, own.get("pre_thresh", 0.0)), "low_thresh": low,
                                "track_thresh": track_thresh})


# "robust": the settings that measured best on generated pedestrian sequences with CenterTrack-like detection noise
# (the gate chosen on seeds 0-50, checked on seeds 60-80: benchmarks/tracker.py; docs/choosing.md).
PRESETS = {
    "centertrack": TrackerConfig(),
    "robust": TrackerConfig(max_age=45, coast=True, min_hits=2, gate=0.25),
}
# What a tracker spec may set after its preset, and how each value is read.
SPEC_OPTIONS: dict[str, type] = {name: OPTIONS[name].kind for name in TRACKER_OPTIONS}


def preset_config(name: str) -> TrackerConfig:
    if name not in PRESETS:
        raise CtrtError(f"tracker {name!r}: choose {', '.join(PRESETS)}", option="tracker")
    return PRESETS[name]


def tracker_preset(name: str = "centertrack", **options: float | int | bool) -> TrackerConfig:
    """A preset by name with options on it, by the names of ``TrackerConfig.from_options``::

        >>> tracker_preset("robust", gate=1.0).max_age
        45
    """
    return TrackerConfig.from_options(preset=name, **options)  # type: ignore[arg-type]


def parse_tracker(spec: str, track_thresh: float = TRACK_THRESH) -> TrackerConfig:
    """``centertrack``, ``robust``, or options on a preset: ``max_age=30,coast``, ``robust,low_thresh=0.2``."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    preset = parts.pop(0) if parts and parts[0] in PRESETS else "centertrack"
    options: dict[str, float | int | bool] = {"track_thresh": track_thresh}
    for part in parts:
        key, _, value = part.partition("=")
        key = key.replace("-", "_")
        kind = SPEC_OPTIONS.get(key)
        try:
            if kind is None or (kind is not bool and not value):
                raise ValueError
            options[key] = (value.lower() not in ("0", "false", "no") if value else True) if kind is bool \
                else kind(value)
        except ValueError:
            raise CtrtError(f"tracker {spec!r}: {part!r} is not one of "
                            + ", ".join(f"{k}=N" if t is int else k if t is bool else f"{k}=X"
                                        for k, t in SPEC_OPTIONS.items())
                            + f" (after an optional preset: {', '.join(PRESETS)})", option="tracker") from None
    try:
        return tracker_preset(preset, **options)
    except CtrtError as exc:
        if exc.option == "track_thresh" or exc.option not in options:
            raise
        raise CtrtError(f"tracker {spec!r}: {exc}", option="tracker") from None  # the spec's own option


def resolve_tracker(tracker: str | TrackerConfig, threshold: float | None = None) -> TrackerConfig:
    """What ``tracker=`` and ``threshold=`` of the Python API mean together: a spec string with the threshold as
    its track threshold, or a ready ``TrackerConfig`` (which holds its own)."""
    if isinstance(tracker, TrackerConfig):
        if threshold is not None and threshold != tracker.track_thresh:
            raise CtrtError(f"threshold {threshold:g}: this TrackerConfig has track_thresh {tracker.track_thresh:g}; "
                            "set it there (tracker_preset(..., track_thresh=...))", option="threshold")
        return tracker
    return parse_tracker(tracker, TRACK_THRESH if threshold is None else threshold)


def gated_distances(dets: Detections, tracks: Detections, gate: float = 1.0) -> np.ndarray:
    """[N, M] squared distance from each detection's previous-frame centre to each track, 1e18 where gated:
    beyond ``gate`` x sqrt(area) of either box (CenterTrack: 1), widening for tracks unseen for a while."""
    predicted = dets.centers + dets.tracking
    dist = ((tracks.centers[None, :, :] - predicted[:, None, :]) ** 2).sum(axis=2)
    reach = np.minimum(gate * (1.0 + GATE_GROWTH * (tracks.ages - 1)), 1.0) ** 2  # [M], squared like dist
    invalid = (
        (dist > reach * tracks.areas[None, :])
        | (dist > reach[None, :] * dets.areas[:, None])
        | (dets.classes[:, None] != tracks.classes[None, :])
    )
    cost: np.ndarray = dist + invalid * INVALID
    return cost


def velocity_distances(dets: Detections, tracks: Detections, gap: int = 1) -> np.ndarray:
    """[N, M] squared distance from each detection's centre to where each track's velocity puts it ``gap`` camera
    frames on: two people crossing at one spot are told apart by which way each was going."""
    ahead = tracks.centers + tracks.velocity * gap
    squared: np.ndarray = ((ahead[None, :, :] - dets.centers[:, None, :]) ** 2).sum(axis=2)
    return squared


def behind(boxes: np.ndarray, nearer: np.ndarray) -> np.ndarray:
    """[K] each box mostly (``HIDDEN``) covered by one of ``nearer`` whose bottom is lower in the frame: seen from
    above, as cameras see people on the ground, that one stands closer and hides it."""
    if not len(nearer) or not len(boxes):
        return np.zeros(len(boxes), bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    covered = intersection_matrix(boxes, nearer) / np.maximum(area, 1e-6)[:, None]
    result: np.ndarray = ((covered > HIDDEN) & (nearer[None, :, 3] > boxes[:, None, 3])).any(axis=1)
    return result


def greedy_match(dist: np.ndarray) -> np.ndarray:
    """Detections in score order each take their nearest still-free track: [P, 2] (det, track) pairs."""
    pairs = []
    if dist.shape[1]:
        dist = dist.copy()
        for row in range(dist.shape[0]):
            col = int(dist[row].argmin())
            if dist[row, col] < MATCH_LIMIT:
                dist[:, col] = INVALID
                pairs.append((row, col))
    return np.array(pairs, np.int64).reshape(-1, 2)


def hungarian_match(dist: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.minimum(dist, INVALID))
    keep = dist[rows, cols] < MATCH_LIMIT
    return np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.reset()

    @property
    def decode_floor(self) -> float:
        return self.config.decode_floor

    def reset(self) -> None:
        self.tracks = Detections.empty()
        self.next_id = 1
        # Mean squared miss of matched detections from their track, in box sizes (what the gate compares), averaged
        # over the frames measured so far, then over the last ~1/(1 - RESIDUAL_MEMORY); CenterTrack's gate until then.
        self.residual = 1.0 / GATE_SIGMAS**2
        self.measured = 0
        self.updates = 0  # since the start or the last reset: the first min_hits show every matched track

    @property
    def gate(self) -> float:
        """The gate this frame: --gate, or wider where the offsets have been missing by more."""
        if self.config.gate >= 1.0:
            return 1.0
        return min(max(self.config.gate, GATE_SIGMAS * float(np.sqrt(self.residual))), 1.0)

    def _measure_residual(self, dets: Detections, det_idx: np.ndarray, track_idx: np.ndarray) -> None:
        """Fold in how far each matched detection's previous centre fell from its track (seen last frame)."""
        fresh = self.tracks.ages[track_idx] == 1
        d, t = det_idx[fresh], track_idx[fresh]
        if not len(d):
            return
        miss = ((dets.centers[d] + dets.tracking[d] - self.tracks.centers[t]) ** 2).sum(axis=1)
        size = np.maximum(np.minimum(dets.areas[d], self.tracks.areas[t]), 1e-6)
        self.measured += 1
        weight = max(1.0 / self.measured, 1.0 - RESIDUAL_MEMORY)
        self.residual += weight * (float((miss / size).mean()) - self.residual)

    def _associate(self, dets: Detections, first: int, gap: int) -> np.ndarray:
        """[P, 2] (detection, track) pairs. CenterTrack: one matching of every detection with every track. BYTE:
        the first ``first`` detections (those above track_thresh) first, then the rest with the tracks left over."""
        config = self.config
        dist = gated_distances(dets, self.tracks, self.gate)
        if config.coast:  # where the track was going counts too; a coasting guess counts for less than a track
            # seen last update at the same distance
            penalty = (1.0 + AGE_PENALTY * (self.tracks.ages - 1))[None, :]
            dist = (dist + velocity_distances(dets, self.tracks, gap)) * penalty
        match = hungarian_match if config.hungarian else greedy_match
        pairs = match(dist[:first])
        if first == len(dets):
            return pairs
        free = np.setdiff1d(np.arange(len(self.tracks)), pairs[:, 1])
        more = match(dist[first:][:, free])
        return np.concatenate([pairs, np.stack([more[:, 0] + first, free[more[:, 1]]], axis=1)])

    def step(self, dets: Detections, gap: int = 1) -> Detections:
        """Associate ``dets`` (descending score; ``tracking`` offsets to the previous update's frame) with the
        current tracks, ``gap`` camera frames after the previous update; returns and keeps the new track set."""
        config = self.config
        # BYTE's high-score detections are a prefix (they come in score order); without it all are.
        first = int((dets.scores > config.track_thresh).sum()) if config.low_thresh is not None else len(dets)
        pairs = self._associate(dets, first, gap)
        det_idx, track_idx = pairs[:, 0], pairs[:, 1]
        if config.gate < 1.0:
            self._measure_residual(dets, det_idx, track_idx)

        matched = dets[det_idx]
        matched.ids = self.tracks.ids[track_idx]
        matched.ages = np.ones(len(matched), np.int32)
        matched.unseen = np.zeros(len(matched), np.int32)
        matched.active = self.tracks.active[track_idx] + 1
        matched.hits = self.tracks.hits[track_idx] + 1
        if config.coast:
            # One frame's offset is noisy: the track's velocity averages it with the track's history, from its
            # second match on (a track's first offset may be the "no previous frame" zero of its birth).
            # The offset spans the gap; the velocity is per camera frame.
            memory = np.where(self.tracks.active[track_idx] >= 2, VELOCITY_MEMORY, 0.0)[:, None]
            matched.velocity = (memory * self.tracks.velocity[track_idx] + (1 - memory) * matched.velocity / gap
                                ).astype(np.float32)

        unmatched = np.zeros(len(dets), bool)
        unmatched[:first] = True  # a low-score detection never starts a track
        unmatched[det_idx] = False
        born = dets[unmatched & (dets.scores > config.new_thresh)]
        born.ids = np.arange(self.next_id, self.next_id + len(born), dtype=np.int64)
        self.next_id += len(born)

        lost = np.ones(len(self.tracks), bool)
        lost[track_idx] = False
        kept = self.tracks[lost & (self.tracks.unseen + gap < config.max_age)]
        kept.ages = kept.ages + 1
        kept.active = np.zeros(len(kept), np.int32)
        if config.coast:
            kept.centers = kept.centers + kept.velocity * gap
            kept.boxes = kept.boxes + np.tile(kept.velocity * gap, 2)
            kept.unseen = kept.unseen + gap * ~behind(kept.boxes, matched.boxes)
        else:
            kept.unseen = kept.unseen + gap

        self.tracks = Detections.concat([matched, born, kept])
        # Nothing can be confirmed against before min_hits updates have passed, so until then every matched track is
        # shown (SORT's rule): a slow loop would otherwise hide everyone in view for its first seconds.
        self.updates += 1
        confirmed = (self.tracks.hits >= config.min_hits) | (self.updates <= config.min_hits)
        self.tracks.shown = (self.tracks.active > 0) & confirmed
        return self.tracks

    def pre_hm_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Boxes CenterTrack draws into the next frame's pre_hm (score >= pre_thresh and active), and their scores."""
        keep = (self.tracks.scores >= self.config.pre_thresh) & (self.tracks.active != 0)
        return self.tracks.boxes[keep], self.tracks.scores[keep]
