"""One dataclass of parallel numpy arrays that flows from decode through the tracker to the sinks."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass
class Detections:
    """Detections or tracks of one frame, one array per field, row i of each being object i::

        >>> people = results.tracks[results.classes == 1]
    """

    boxes: np.ndarray  # [N, 4] float32 xyxy, original-image pixels
    scores: np.ndarray  # [N] float32, sigmoid of the heatmap logit
    classes: np.ndarray  # [N] int32, 1-based as CenterTrack reports them
    centers: np.ndarray  # [N, 2] float32, the heatmap peak mapped to the image
    tracking: np.ndarray  # [N, 2] float32, offset to the object's centre in the previous frame
    ids: np.ndarray  # [N] int64 track id, 0 before tracking
    ages: np.ndarray  # [N] int32 updates since last matched (1 = matched now)
    unseen: np.ndarray  # [N] int32 camera frames missed since last matched, not hidden by a nearer track (0 = matched)
    active: np.ndarray  # [N] int32 consecutive matched frames, 0 for a track kept without a match
    velocity: np.ndarray  # [N, 2] float32 px per camera frame, smoothed over the matched frames (for --coast)
    hits: np.ndarray  # [N] int32 frames matched since the track began
    shown: np.ndarray  # [N] bool: reported this frame (matched, and confirmed by --min-hits)

    @classmethod
    def empty(cls) -> Detections:
        return cls.create(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                          np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))

    @classmethod
    def create(cls, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, centers: np.ndarray,
               tracking: np.ndarray) -> Detections:
        n = len(scores)
        return cls(boxes, scores, classes, centers, tracking, np.zeros(n, np.int64), np.ones(n, np.int32),
                   np.zeros(n, np.int32), np.ones(n, np.int32), -tracking, np.ones(n, np.int32), np.ones(n, bool))

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(*(getattr(self, f.name)[index] for f in fields(self)))

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    @property
    def areas(self) -> np.ndarray:
        areas: np.ndarray = (self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])
        return areas


MATCH_IOU = 0.5  # the overlap at which two boxes are the same object (MOTChallenge, COCO AP50)


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[A, B] area shared by each pair of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter: np.ndarray = np.prod(np.clip(rb - lt, 0, None), axis=2)
    return inter


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes; boxes equal to within half a pixel count as 1, so zero-area boxes (which untrained
    weights produce: negative widths are clamped to 0) can match themselves."""
    inter = intersection_matrix(a, b)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    iou = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    same = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) <= 0.5
    return np.where(same, 1.0, iou)


def pairs_by_iou(iou: np.ndarray, threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs of an IoU matrix, best overlap first, down to ``threshold``."""
    iou = iou.copy()
    pairs = []
    while iou.size and iou.max() >= threshold:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        pairs.append((int(i), int(j)))
        iou[i, :], iou[:, j] = -1, -1
    return pairs
