"""CenterTrack's decode on the host: 3x3 peak test, top-K over classes and positions, gathers, inverse affine.

Peaks and top-K are found on the logits (sigmoid is monotonic) and sigmoid runs on the K survivors only. Where a
trained model's heatmap is sparse, only pixels above the score threshold are examined (9 gathers each); a dense
heatmap (untrained weights) takes one whole-map 3x3 max with OpenCV instead. Both give the set of peaks that
CenterTrack's ``max_pool2d(heat) == heat`` keeps above the threshold.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..artifacts import ArtifactMeta
from ..options import default
from .detections import Detections
from .preprocess import DOWN_RATIO, FrameGeometry
from .tracker import TRACK_THRESH

TOPK: int = default("topk")  # CenterTrack's --K: detections kept per image

# Beyond this many above-threshold pixels the whole-map max is cheaper than 9 gathers per candidate.
SPARSE_LIMIT = 8192
# The logit pre-filter sits a little below the threshold; the exact float32 score test runs after sigmoid.
_LOGIT_MARGIN = 1e-3


def _logit(p: float) -> float:
    if p <= 0:
        return -math.inf
    if p >= 1:
        return math.inf
    return math.log(p / (1 - p)) - _LOGIT_MARGIN


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def transform_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """[N, 2] points through a 2x3 affine, in float32 like CenterTrack's ``transform_preds_with_trans``."""
    homogeneous = np.ones((len(points), 3), np.float32)
    homogeneous[:, :2] = points
    return homogeneous @ affine.T


def _row_max3(rows: np.ndarray) -> np.ndarray:
    """Max over each element and its left and right neighbours, per row of [C, W]."""
    out = rows.copy()
    np.maximum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


class Decoder:
    """Heads of one image ([C, H, W] arrays by name) -> Detections in frame pixels, score > threshold, at most K."""

    def __init__(self, num_classes: int, out_h: int, out_w: int, k: int = TOPK, threshold: float = TRACK_THRESH,
                 sparse_limit: int = SPARSE_LIMIT) -> None:
        self.k, self.threshold, self.sparse_limit = k, threshold, sparse_limit
        self.floor = np.float32(_logit(threshold))
        self.shape = (num_classes, out_h, out_w)
        self._above = np.empty(num_classes * out_h * out_w, bool)
        self._hmax = np.empty(self.shape, np.float32)
        self._is_peak = np.empty(self.shape, bool)
        self._offsets = np.array([-1, 0, 1])
        self._kernel = np.ones((3, 3), np.uint8)

    @classmethod
    def for_meta(cls, meta: ArtifactMeta, k: int = TOPK, threshold: float = TRACK_THRESH) -> Decoder:
        """The decoder of a model's outputs (stride-4 maps of its input size)."""
        h, w = meta.input_size
        return cls(meta.config.num_classes, h // DOWN_RATIO, w // DOWN_RATIO, k, threshold)

    def peaks(self, hm: np.ndarray) -> np.ndarray:
        """Flat indices of 3x3 local maxima whose logit clears the pre-filter."""
        flat = hm.reshape(-1)
        with np.errstate(invalid="ignore"):
            np.greater(flat, self.floor, out=self._above)
        if np.count_nonzero(self._above) > self.sparse_limit:
            return self._dense_peaks(hm)
        candidates = np.flatnonzero(self._above)
        _, h, w = self.shape
        plane, rem = np.divmod(candidates, h * w)
        y, x = np.divmod(rem, w)
        # Clipping a neighbour to the border lands on a pixel inside the window, so the max is unchanged.
        ny = np.clip(y[:, None] + self._offsets, 0, h - 1)
        nx = np.clip(x[:, None] + self._offsets, 0, w - 1)
        neighbours = (plane * (h * w))[:, None, None] + ny[:, :, None] * w + nx[:, None, :]
        window_max = flat[neighbours.reshape(len(candidates), 9)].max(axis=1)
        return candidates[flat[candidates] == window_max]

    def _dense_peaks(self, hm: np.ndarray) -> np.ndarray:
        c, h, w = self.shape
        hmax = self._hmax
        # One dilation over the class planes stacked vertically; only each plane's first and last rows see the
        # neighbouring plane, so those two rows are redone from their own plane.
        cv2.dilate(hm.reshape(c * h, w), self._kernel, dst=hmax.reshape(c * h, w))
        hmax[:, 0] = _row_max3(hm[:, :2].max(axis=1))
        hmax[:, -1] = _row_max3(hm[:, -2:].max(axis=1))
        np.equal(hm, hmax, out=self._is_peak)
        peaks = self._is_peak.reshape(-1)
        np.logical_and(peaks, self._above, out=peaks)
        return np.flatnonzero(peaks)

    def __call__(self, heads: dict[str, np.ndarray], geometry: FrameGeometry) -> Detections:
        hm = heads["hm"]
        flat = hm.reshape(-1)
        peaks = self.peaks(hm)
        if len(peaks) > self.k:
            top = np.argpartition(-flat[peaks], self.k - 1)[: self.k]
            peaks = peaks[top]
        peaks = peaks[np.argsort(-flat[peaks], kind="stable")]
        scores = sigmoid(flat[peaks])
        peaks, scores = peaks[scores > self.threshold], scores[scores > self.threshold]
        if len(peaks) == 0:
            return Detections.empty()

        _, h, w = self.shape
        plane, rem = np.divmod(peaks, h * w)
        y, x = np.divmod(rem, w)
        wh = heads["wh"]
        if "reg" in heads:
            offset = heads["reg"][:, y, x].T
        elif wh.shape[0] == 4:  # CenterNet-HarDNet packs the centre offset into wh[2:4]
            offset = wh[2:4, y, x].T
        else:
            offset = np.full((len(peaks), 2), 0.5, np.float32)
        size = wh[:2, y, x].T
        tracking = heads["tracking"][:, y, x].T if "tracking" in heads else np.zeros((len(peaks), 2), np.float32)
        return assemble(scores, plane, x, y, offset, size, tracking, geometry)


def assemble(scores: np.ndarray, classes: np.ndarray, x: np.ndarray, y: np.ndarray, offset: np.ndarray,
             size: np.ndarray, tracking: np.ndarray, geometry: FrameGeometry) -> Detections:
    """Peaks and their gathered head values (output-map units, 0-based classes) -> Detections in frame pixels."""
    centres = np.stack([x, y], axis=1).astype(np.float32)
    size = np.where(size < 0, np.float32(0), size)
    n = len(scores)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite head values are dropped at the end
        refined = centres + offset
        corners = np.concatenate([refined - size / 2, refined + size / 2], axis=1)
        mapped = transform_points(np.concatenate([centres, centres + tracking, corners.reshape(-1, 2)]),
                                  geometry.output_to_frame)
        ct = mapped[:n]
        boxes = mapped[2 * n :].reshape(n, 4)
        offsets = mapped[n : 2 * n] - ct
    finite = np.isfinite(boxes).all(1) & np.isfinite(offsets).all(1)
    dets = Detections.create(boxes, scores, (classes + 1).astype(np.int32), ct, offsets)
    return dets if finite.all() else dets[finite]


# Output names of a model exported with --decode-in-graph: K-sized tensors, highest score first.
TOPK_OUTPUTS = ("scores", "classes", "xs", "ys", "offset", "size", "tracking")


def decode_topk(outputs: dict[str, np.ndarray], geometry: FrameGeometry, threshold: float) -> Detections:
    """Host side of the in-graph decode: threshold the K candidates and map them to the frame."""
    scores = outputs["scores"]
    keep = scores > threshold
    if not keep.any():
        return Detections.empty()
    pick = {name: outputs[name][keep] for name in TOPK_OUTPUTS}
    return assemble(pick["scores"], pick["classes"].astype(np.int64), pick["xs"], pick["ys"], pick["offset"],
                    pick["size"], pick["tracking"], geometry)
