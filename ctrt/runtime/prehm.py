"""The previous-frame heatmap input: each track as a CornerNet Gaussian at input resolution, as CenterTrack draws it."""

from __future__ import annotations

import numpy as np

MIN_OVERLAP = 0.7


def gaussian_radius(height: np.ndarray, width: np.ndarray, min_overlap: float = MIN_OVERLAP) -> np.ndarray:
    """CornerNet's radius (CenterTrack's version, with its ``(b + sq) / 2`` roots): the min of three quadratics."""
    h = np.asarray(height, np.float64)
    w = np.asarray(width, np.float64)
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return np.minimum(np.minimum(r1, r2), r3)


def gaussian_kernel(radius: int) -> np.ndarray:
    """(2r+1)^2 Gaussian with sigma = diameter / 6, tiny tails zeroed, peak 1 (float64 like the reference)."""
    diameter = 2 * radius + 1
    sigma = diameter / 6
    axis = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(axis[None, :] ** 2 + axis[:, None] ** 2) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(np.float64).eps * kernel.max()] = 0
    return kernel


class PreHeatmapRenderer:
    """Draws boxes given in frame pixels into a [H, W] float32 map at input resolution."""

    def __init__(self, input_h: int, input_w: int) -> None:
        self.input_h, self.input_w = input_h, input_w
        self._kernels: dict[int, np.ndarray] = {}

    def _kernel(self, radius: int) -> np.ndarray:
        kernel = self._kernels.get(radius)
        if kernel is None:
            kernel = self._kernels[radius] = gaussian_kernel(radius)
        return kernel

    def render(self, boxes: np.ndarray, to_input: np.ndarray, out: np.ndarray) -> None:
        """Clear ``out`` and draw ``boxes`` ([N, 4] xyxy, frame px) mapped through ``to_input`` (2x3)."""
        self.draw(self.to_input(boxes, to_input), out)

    def to_input(self, boxes: np.ndarray, to_input: np.ndarray) -> np.ndarray:
        """``boxes`` ([N, 4] xyxy, frame px) in input pixels, clipped to the input: what ``draw`` takes. A client of
        a stateful Triton model sends these and the server draws them, so both halves are this code."""
        corners = np.ones((len(boxes) * 2, 3), np.float32)
        corners[:, :2] = np.asarray(boxes, np.float32).reshape(-1, 2)
        mapped = (corners @ to_input.T).astype(np.float32).reshape(-1, 4)
        np.clip(mapped[:, 0::2], 0, self.input_w - 1, out=mapped[:, 0::2])
        np.clip(mapped[:, 1::2], 0, self.input_h - 1, out=mapped[:, 1::2])
        return mapped

    def draw(self, mapped: np.ndarray, out: np.ndarray) -> None:
        """Clear ``out`` and draw boxes already in input pixels ([N, 4] float32 from ``to_input``)."""
        out.fill(0)
        if len(mapped) == 0:
            return
        h = mapped[:, 3] - mapped[:, 1]
        w = mapped[:, 2] - mapped[:, 0]
        keep = (h > 0) & (w > 0)
        if not keep.any():
            return
        mapped, h, w = mapped[keep], h[keep], w[keep]
        radii = np.maximum(0, gaussian_radius(np.ceil(h), np.ceil(w)).astype(np.int64))
        centres = np.empty((len(mapped), 2), np.float32)
        centres[:, 0] = (mapped[:, 0] + mapped[:, 2]) / 2
        centres[:, 1] = (mapped[:, 1] + mapped[:, 3]) / 2
        centres_int = centres.astype(np.int32)
        # One slice-max per track (at most K of them); each is a vectorised op on the blob's window.
        for (x, y), radius in zip(centres_int.tolist(), radii.tolist()):
            left, right = min(x, radius), min(self.input_w - x, radius + 1)
            top, bottom = min(y, radius), min(self.input_h - y, radius + 1)
            window = out[y - top : y + bottom, x - left : x + right]
            blob = self._kernel(radius)[radius - top : radius + bottom, radius - left : radius + right]
            if min(window.shape) > 0 and min(blob.shape) > 0:
                np.maximum(window, blob, out=window)
