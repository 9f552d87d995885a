"""CenterTrack's CPU pre-processing: isotropic letterbox warp, BGR, /255, -mean, /std, NCHW float32.

Bit-exact with the reference: the affine is built from the same three float32 points through
``cv2.getAffineTransform``, and normalisation goes through a 256-entry table per channel computed in float64 the way
the reference computes each pixel (``(img / 255. - mean) / std`` then float32), so each frame is touched twice (one
warp, one table lookup per channel) and nothing is allocated per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..model.config import MEAN_BGR, STD_BGR

DOWN_RATIO = 4


def letterbox_affine(center: tuple[float, float], scale: float, out_w: int, out_h: int, inverse: bool = False) -> np.ndarray:
    """CenterTrack's ``get_affine_transform(c, s, 0, (out_w, out_h))``: isotropic, factor out_w / s, centre to centre."""
    c = np.asarray(center, np.float32)
    half_s = np.float32(scale) * np.float32(-0.5)
    half_w = np.float32(out_w) * np.float32(-0.5)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = c
    src[1] = c + np.array([0, half_s], np.float32)
    dst[0] = [out_w * 0.5, out_h * 0.5]
    dst[1] = dst[0] + np.array([0, half_w], np.float32)
    # Third point: the second rotated 90 degrees about the first, which fixes an isotropic map.
    src[2] = src[1] + np.array([-(src[0, 1] - src[1, 1]), src[0, 0] - src[1, 0]], np.float32)
    dst[2] = dst[1] + np.array([-(dst[0, 1] - dst[1, 1]), dst[0, 0] - dst[1, 0]], np.float32)
    return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


@dataclass(frozen=True)
class FrameGeometry:
    """The maps between one frame size and the model's input and output grids."""

    frame_w: int
    frame_h: int
    to_input: np.ndarray  # 2x3 float64, frame px -> input px (warp and pre_hm rendering)
    output_to_frame: np.ndarray  # 2x3 float32, output-map px -> frame px (post-processing)

    @classmethod
    def build(cls, frame_w: int, frame_h: int, input_h: int, input_w: int) -> FrameGeometry:
        center = (frame_w / 2.0, frame_h / 2.0)
        scale = float(max(frame_h, frame_w))
        return cls(
            frame_w,
            frame_h,
            letterbox_affine(center, scale, input_w, input_h),
            letterbox_affine(center, scale, input_w // DOWN_RATIO, input_h // DOWN_RATIO, inverse=True).astype(np.float32),
        )


def normalisation_table(mean: tuple[float, ...] = MEAN_BGR, std: tuple[float, ...] = STD_BGR) -> np.ndarray:
    """[3, 256] float32: value v of channel c -> ((v / 255.) - mean[c]) / std[c], in the reference's precision."""
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    table = (levels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(table.astype(np.float32).T)


class Preprocessor:
    """Turns a BGR uint8 frame into the model's normalised [3, H, W] tensor, in place."""

    def __init__(self, input_h: int, input_w: int, mean: tuple[float, ...] = MEAN_BGR, std: tuple[float, ...] = STD_BGR):
        self.input_h, self.input_w = input_h, input_w
        # cv2.LUT wants one [1, 256] table per plane; it is ~5x faster than np.take here.
        self.tables = [row.reshape(1, 256).copy() for row in normalisation_table(mean, std)]
        self.warped = np.empty((input_h, input_w, 3), np.uint8)
        self.planes = [np.empty((input_h, input_w), np.uint8) for _ in range(3)]
        self.geometry: FrameGeometry | None = None

    def geometry_for(self, frame: np.ndarray) -> FrameGeometry:
        h, w = frame.shape[:2]
        if self.geometry is None or (self.geometry.frame_w, self.geometry.frame_h) != (w, h):
            self.geometry = FrameGeometry.build(w, h, self.input_h, self.input_w)
        return self.geometry

    def warp(self, frame: np.ndarray) -> np.ndarray:
        """The letterboxed uint8 image (black border), as the reference's ``cv2.warpAffine``."""
        geometry = self.geometry_for(frame)
        cv2.warpAffine(frame, geometry.to_input, (self.input_w, self.input_h), dst=self.warped, flags=cv2.INTER_LINEAR)
        return self.warped

    def normalise(self, warped: np.ndarray, out: np.ndarray) -> None:
        """A letterboxed uint8 HxWx3 image -> ``out`` [3, H, W] float32, one table lookup per plane."""
        cv2.split(warped, self.planes)
        for plane, table, dst in zip(self.planes, self.tables, out):
            cv2.LUT(plane, table, dst=dst)

    def __call__(self, frame: np.ndarray, out: np.ndarray) -> FrameGeometry:
        """Fill ``out`` ([3, H, W] float32) from ``frame`` (H0 x W0 x 3 uint8 BGR)."""
        self.normalise(self.warp(frame), out)
        assert self.geometry is not None
        return self.geometry
