"""Numerical check of an exported ONNX against the PyTorch model it came from, on random and real inputs."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from ..runtime.backends.base import Backend
from ..runtime.prehm import PreHeatmapRenderer
from ..runtime.preprocess import Preprocessor

# What a plain FP32 trace achieves on logits; ONNX Runtime's conv kernels and the FP16-safe rewrite of the Sum-to-1
# context differ from PyTorch only in summation order (measured ~1e-5 on HarDNet-85 at 512x512, see README).
DEFAULT_ATOL = 1e-4


@dataclass
class ParityRow:
    case: str
    output: str
    max_abs: float
    rel_to_range: float  # max |difference| / max |reference|
    ok: bool


def sample_image(name: str = "astronaut") -> np.ndarray:
    """A real photograph shipped with ctrt (BGR uint8)."""
    data = resources.files("ctrt").joinpath("assets", f"{name}.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"packaged asset {name}.jpg is unreadable"
    return image


def real_feed(inputs: list[str], batch: int, h: int, w: int,
              source_hw: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """A photo as the runtime would pre-process it, its shifted copy as pre_img and two boxes in pre_hm
    (for in-graph pre-processing: the photo and its shifted copy as raw frames of ``source_hw``)."""
    frame = sample_image()
    if source_hw is not None:
        frame = cv2.resize(frame, (source_hw[1], source_hw[0]), interpolation=cv2.INTER_AREA)
    pre = Preprocessor(h, w)
    image = np.empty((3, h, w), np.float32)
    geometry = pre(frame, image)
    shifted = np.roll(frame, (9, -13), axis=(0, 1))
    pre_img = np.empty((3, h, w), np.float32)
    pre(shifted, pre_img)
    pre_hm = np.empty((h, w), np.float32)
    fh, fw = frame.shape[:2]
    boxes = np.array([[0.3 * fw, 0.1 * fh, 0.7 * fw, 0.9 * fh], [0.05 * fw, 0.6 * fh, 0.25 * fw, 0.95 * fh]], np.float32)
    PreHeatmapRenderer(h, w).render(boxes, geometry.to_input, pre_hm)
    tensors = {"image": image, "pre_img": pre_img, "pre_hm": pre_hm[None], "frame": frame, "pre_frame": shifted}
    return {name: np.repeat(tensors[name][None], batch, axis=0) for name in inputs}


def random_feed(inputs: list[str], batch: int, h: int, w: int, source_hw: tuple[int, int] | None = None,
                seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for name in inputs:
        if name in ("frame", "pre_frame"):
            assert source_hw is not None
            feed[name] = rng.integers(0, 256, (batch, *source_hw, 3), dtype=np.uint8)
        elif name == "pre_hm":
            feed[name] = rng.random((batch, 1, h, w), dtype=np.float32)
        else:
            feed[name] = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
    return feed


def compare(reference: Backend, candidate: Backend, feeds: dict[str, dict[str, np.ndarray]],
            atol: float = DEFAULT_ATOL) -> list[ParityRow]:
    rows = []
    for case, feed in feeds.items():
        expected, actual = reference(feed), candidate(feed)
        for name, ref in expected.items():
            diff = float(np.max(np.abs(actual[name].astype(np.float64) - ref)))
            scale = float(np.max(np.abs(ref))) or 1.0
            rows.append(ParityRow(case, name, diff, diff / scale, bool(diff <= atol)))
    return rows


def standard_feeds(inputs: list[str], batch: int, h: int, w: int,
                   source_hw: tuple[int, int] | None = None) -> dict[str, dict[str, np.ndarray]]:
    return {"random": random_feed(inputs, batch, h, w, source_hw), "photo": real_feed(inputs, batch, h, w, source_hw)}
