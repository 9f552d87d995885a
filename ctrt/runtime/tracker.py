"""CenterTrack's tracker: associate detections to tracks by the predicted previous-frame centre.

Greedy mode reproduces CenterTrack exactly; ``hungarian`` solves the same gated cost matrix optimally (the
CenterTrack-HarDNet fork's version of that path is broken: it treats scipy's tuple as an array).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detections import Detections

INVALID = 1e18
MATCH_LIMIT = 1e16


@dataclass
class TrackerConfig:
    new_thresh: float = 0.3  # unmatched detections above this start a track
    pre_thresh: float = 0.3  # tracks at or above this are drawn into pre_hm
    max_age: int = -1  # frames an unmatched track is kept; -1 keeps none (CenterTrack's default)
    hungarian: bool = False

    @classmethod
    def from_options(cls, track_thresh: float = 0.3, pre_thresh: float | None = None,
                     new_thresh: float | None = None, max_age: int = -1, hungarian: bool = False) -> TrackerConfig:
        """CenterTrack's rule: each threshold is max(track_thresh, its own value), its own value unset by default."""
        return cls(new_thresh=max(track_thresh, new_thresh or 0.0), pre_thresh=max(track_thresh, pre_thresh or 0.0),
                   max_age=max_age, hungarian=hungarian)


def gated_distances(dets: Detections, tracks: Detections) -> np.ndarray:
    """[N, M] squared distance from each detection's previous-frame centre to each track, 1e18 where gated."""
    predicted = dets.centers + dets.tracking
    dist = ((tracks.centers[None, :, :] - predicted[:, None, :]) ** 2).sum(axis=2)
    invalid = (
        (dist > tracks.areas[None, :])
        | (dist > dets.areas[:, None])
        | (dets.classes[:, None] != tracks.classes[None, :])
    )
    return dist + invalid * INVALID


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

    def reset(self) -> None:
        self.tracks = Detections.empty()
        self.next_id = 1

    def step(self, dets: Detections) -> Detections:
        """Associate ``dets`` (descending score) with the current tracks; returns and keeps the new track set."""
        dist = gated_distances(dets, self.tracks)
        pairs = hungarian_match(dist) if self.config.hungarian else greedy_match(dist)
        det_idx, track_idx = pairs[:, 0], pairs[:, 1]

        matched = dets[det_idx]
        matched.ids = self.tracks.ids[track_idx]
        matched.ages = np.ones(len(matched), np.int32)
        matched.active = self.tracks.active[track_idx] + 1

        unmatched = np.ones(len(dets), bool)
        unmatched[det_idx] = False
        born = dets[unmatched & (dets.scores > self.config.new_thresh)]
        born.ids = np.arange(self.next_id, self.next_id + len(born), dtype=np.int64)
        self.next_id += len(born)

        lost = np.ones(len(self.tracks), bool)
        lost[track_idx] = False
        kept = self.tracks[lost & (self.tracks.ages < self.config.max_age)]
        kept.ages = kept.ages + 1
        kept.active = np.zeros(len(kept), np.int32)

        self.tracks = Detections.concat([matched, born, kept])
        return self.tracks

    def pre_hm_boxes(self) -> np.ndarray:
        """Boxes CenterTrack draws into the next frame's pre_hm: score >= pre_thresh and active."""
        keep = (self.tracks.scores >= self.config.pre_thresh) & (self.tracks.active != 0)
        return self.tracks.boxes[keep]
