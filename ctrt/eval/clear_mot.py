"""CLEAR MOT scoring of one sequence (MOTA, precision, ID switches) plus how well each object keeps one id.

Matching follows the CLEAR MOT rules: a ground-truth object keeps last frame's track while their IoU stays >= 0.5,
the rest are paired by the Hungarian method on IoU. Objects marked as not counted (mostly out of view or covered)
are "don't care": a track on one is neither a hit nor a false positive, and missing one is no miss.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..runtime.detections import MATCH_IOU, iou_matrix



@dataclass
class MotScore:
    objects: int = 0  # counted ground-truth boxes over all frames
    hits: int = 0
    false_positives: int = 0
    misses: int = 0
    id_switches: int = 0
    # per object id: how many counted frames it was matched under each track id
    track_ids: dict[int, Counter[int]] = field(default_factory=dict)
    frames_counted: Counter[int] = field(default_factory=Counter)

    @property
    def mota(self) -> float:
        return 1.0 - (self.misses + self.false_positives + self.id_switches) / max(self.objects, 1)

    @property
    def precision(self) -> float:
        return self.hits / max(self.hits + self.false_positives, 1)

    @property
    def recall(self) -> float:
        return self.hits / max(self.objects, 1)

    def id_consistency(self) -> dict[int, float]:
        """Per object: the share of its counted frames in which it carried its most frequent track id."""
        return {obj: self._main_id_frames(obj) / frames for obj, frames in self.frames_counted.items()}

    def one_id(self) -> dict[int, float]:
        """Per object: the share of its counted frames with at most one id, its main one (found under it, or missed):
        the frames it is not shown under another id."""
        return {obj: 1 - (sum(self.track_ids.get(obj, Counter()).values()) - self._main_id_frames(obj)) / frames
                for obj, frames in self.frames_counted.items()}

    def _main_id_frames(self, obj: int) -> int:
        return max(self.track_ids.get(obj, Counter()).values(), default=0)

    def summary(self) -> dict[str, float]:
        consistency = self.id_consistency()
        dominant = sum(self._main_id_frames(obj) for obj in self.track_ids)
        return {"mota": self.mota, "precision": self.precision, "recall": self.recall,
                "id_switches": self.id_switches, "false_positives": self.false_positives, "misses": self.misses,
                "objects": self.objects, "id_consistency": dominant / max(self.objects, 1),
                "min_id_consistency": min(consistency.values(), default=1.0),
                "min_one_id": min(self.one_id().values(), default=1.0)}


def score_sequence(truth: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                   tracks: list[tuple[np.ndarray, np.ndarray]]) -> MotScore:
    """``truth``: per frame (boxes xyxy, object ids, counted mask); ``tracks``: per frame (boxes xyxy, track ids)."""
    from scipy.optimize import linear_sum_assignment

    score = MotScore()
    last: dict[int, int] = {}  # object id -> track id it was last matched to
    for (gt_boxes, gt_ids, counted), (tr_boxes, tr_ids) in zip(truth, tracks, strict=True):
        iou = iou_matrix(np.asarray(gt_boxes, np.float64), np.asarray(tr_boxes, np.float64)) \
            if len(gt_boxes) and len(tr_boxes) else np.zeros((len(gt_boxes), len(tr_boxes)))
        gt_ids, tr_ids = np.asarray(gt_ids).tolist(), np.asarray(tr_ids).tolist()
        pairs: dict[int, int] = {}  # gt index -> track index
        for g, obj in enumerate(gt_ids):  # correspondences carried over from the previous frame
            if obj in last and last[obj] in tr_ids:
                t = tr_ids.index(last[obj])
                if iou[g, t] >= MATCH_IOU and t not in pairs.values():
                    pairs[g] = t
        free_g = [g for g in range(len(gt_ids)) if g not in pairs]
        free_t = [t for t in range(len(tr_ids)) if t not in pairs.values()]
        if free_g and free_t:
            sub = iou[np.ix_(free_g, free_t)]
            rows, cols = linear_sum_assignment(-sub)
            pairs.update({free_g[r]: free_t[c] for r, c in zip(rows, cols) if sub[r, c] >= MATCH_IOU})
        for g, obj in enumerate(gt_ids):
            if not counted[g]:
                continue
            score.objects += 1
            score.frames_counted[obj] += 1
            if g not in pairs:
                score.misses += 1
                continue
            track = tr_ids[pairs[g]]
            score.hits += 1
            if obj in last and last[obj] != track:
                score.id_switches += 1
            last[obj] = track
            score.track_ids.setdefault(obj, Counter())[track] += 1
        cared = {t for g, t in pairs.items() if counted[g]}
        ignored = {t for g, t in pairs.items() if not counted[g]}
        score.false_positives += sum(1 for t in range(len(tr_ids)) if t not in cared and t not in ignored)
    return score
