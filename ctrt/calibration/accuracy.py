"""What INT8 cost: per-head error and SQNR against FP32, and detection agreement, on held-out images."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.backends.base import Backend
from ..runtime.decode import Decoder
from ..runtime.detections import iou_matrix, pairs_by_iou
from ..runtime.preprocess import FrameGeometry
from ..runtime.sources import read_image
from ..runtime.tracker import TRACK_THRESH
from .dataset import CalibrationInputs



@dataclass
class HeadError:
    head: str
    max_abs: float
    sqnr_db: float


@dataclass
class AccuracyReport:
    images: int
    heads: list[HeadError]
    fp32_detections: int
    matched: int
    mean_score_diff: float
    threshold: float
    held_out: list[str] = field(default_factory=list)
    # FP32 scores of the detections INT8 missed: near the threshold means borderline, high means INT8 broke one.
    missed_scores: list[float] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        """None when FP32 detected nothing: there is nothing to agree with."""
        return self.matched / self.fp32_detections if self.fp32_detections else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agreement": self.agreement}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """10 log10(signal power / quantization-noise power); inf when identical."""
    noise = float(np.sum((reference.astype(np.float64) - candidate) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(signal / noise)


def measure_accuracy(fp32: Backend, int8: Backend, inputs: CalibrationInputs, images: list[Path],
            threshold: float = TRACK_THRESH) -> AccuracyReport:
    """Both backends on each held-out image; FP32 detections above ``threshold`` matched by class and IoU >= 0.5."""
    h, w = fp32.meta.input_size
    decoder = Decoder.for_meta(fp32.meta, threshold=threshold)
    noise: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    total = matched = 0
    score_diffs: list[float] = []
    missed: list[float] = []
    for index, path in enumerate(images):
        frame = read_image(path)
        if frame is None:
            continue  # select_images only hands out readable images; a file changed since is skipped
        geometry = FrameGeometry.build(frame.shape[1], frame.shape[0], h, w)
        feed = {name: value[None] for name, value in inputs.sample(path, index).items()}
        reference = {k: v.copy() for k, v in fp32(feed).items()}
        candidate = int8(feed)
        for head, value in reference.items():
            noise.setdefault(head, []).append((value, candidate[head].copy()))
        a = decoder({k: v[0] for k, v in reference.items()}, geometry)
        b = decoder({k: v[0] for k, v in candidate.items()}, geometry)
        total += len(a)
        found = set()
        if len(a) and len(b):
            iou = iou_matrix(a.boxes, b.boxes)
            iou[a.classes[:, None] != b.classes[None, :]] = 0
            for i, j in pairs_by_iou(iou):
                matched += 1
                found.add(i)
                score_diffs.append(float(b.scores[j] - a.scores[i]))
        missed.extend(float(a.scores[i]) for i in range(len(a)) if i not in found)
    heads = []
    for head, pairs in noise.items():
        ref = np.concatenate([p[0].ravel() for p in pairs])
        got = np.concatenate([p[1].ravel() for p in pairs])
        heads.append(HeadError(head, float(np.abs(ref - got).max()), sqnr_db(ref, got)))
    return AccuracyReport(len(images), heads, total, matched, float(np.mean(score_diffs)) if score_diffs else 0.0,
                          threshold, [p.name for p in images], sorted(missed))
