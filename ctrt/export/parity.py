"""Numerical check of an exported ONNX against the PyTorch model it came from, on random and real inputs."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import secrets

import cv2
import numpy as np

from ..runtime.backends.base import Backend
from ..runtime.prehm import PreHeatmapRenderer
from ..runtime.preprocess import Preprocessor

# What a plain FP32 trace achieves on logits; ONNX Runtime's conv kernels and the FP16-safe rewrite of the Sum-to-1
# context differ from PyTorch only in summation order (measured ~1e-5 on HarDNet-85 at 512x512, docs/verification.md).
DEFAULT_ATOL = 1e-4
# An FP16 export against the FP32 model: FP16 keeps ~3 significant digits through ~100 layers (measured 1e-2).
FP16_ATOL = 5e-2


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
                seed: int = 0, topk: int = 100) -> dict[str, np.ndarray]:
    """Random inputs by name; a stateful Triton model's ``pre_boxes`` empty and ``sequence`` ids fresh per call
    (unique among the server's live sequences, whoever else benchmarks it)."""
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for name in inputs:
        if name == "pre_boxes":
            feed[name] = np.zeros((batch, topk, 5), np.float32)
        elif name == "sequence":
            feed[name] = np.array([secrets.randbits(63) | 1 for _ in range(batch)], np.uint64)
        elif name in ("frame", "pre_frame"):
            assert source_hw is not None
            feed[name] = rng.integers(0, 256, (batch, *source_hw, 3), dtype=np.uint8)
        elif name == "pre_hm":
            feed[name] = rng.random((batch, 1, h, w), dtype=np.float32)
        else:
            feed[name] = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
    return feed


# A 3x3 peak test decided by less than this (in logits) may go either way between two implementations.
TIE_LOGIT = 1e-4


def undecided_peak(hm: np.ndarray, key: np.ndarray) -> bool:
    """Whether the pixel's 3x3 peak test in ``hm`` ([C, H, W] logits) is decided by less than TIE_LOGIT."""
    c, y, x = (int(v) for v in key)
    window = hm[c, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].astype(np.float64)
    centre = float(hm[c, y, x])
    others = np.sort(window.ravel())
    # The largest neighbour: drop one copy of the centre value from the window.
    neighbour = others[-2] if others[-1] == centre else others[-1]
    return abs(centre - float(neighbour)) <= TIE_LOGIT


def align_topk(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float,
               heatmap: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Pair in-graph decode outputs by (class, y, x): near-equal scores may come out in another order.

    A peak found on one side only is accepted where it is a tie: its peak test in the reference ``heatmap`` is
    decided by less than TIE_LOGIT (bilinear up-sampling leaves near-flat ridges where a 1e-6 difference decides),
    or it sits at the top-K boundary. Any other unpaired peak keeps its full score as the error; paired peaks are
    compared to ``atol``.
    """
    def keys(outputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([outputs[n].reshape(-1) for n in ("classes", "ys", "xs")], axis=1).astype(np.int64)

    ek, ak = keys(expected), keys(actual)
    es, acts = expected["scores"].reshape(-1), actual["scores"].reshape(-1)
    where = {tuple(key): i for i, key in enumerate(ek.tolist())}
    pairs = [(where[tuple(key)], j) for j, key in enumerate(ak.tolist()) if tuple(key) in where]
    free_e = [i for i in sorted(set(range(len(ek))) - {i for i, _ in pairs}) if not undecided_peak(heatmap, ek[i])]
    free_a = [j for j in sorted(set(range(len(ak))) - {j for _, j in pairs}) if not undecided_peak(heatmap, ak[j])]
    ei = np.array([i for i, _ in pairs], np.int64)
    aj = np.array([j for _, j in pairs], np.int64)
    aligned_e = {name: value.reshape(value.shape[1], -1)[ei] for name, value in expected.items()}
    aligned_a = {name: value.reshape(value.shape[1], -1)[aj] for name, value in actual.items()}
    kth = min(float(es.min()), float(acts.min()))
    loose = [float(es[i]) for i in free_e] + [float(acts[j]) for j in free_a]
    if any(score > kth + atol for score in loose):
        aligned_a["scores"] = np.append(aligned_a["scores"], max(loose))
        aligned_e["scores"] = np.append(aligned_e["scores"], 0.0)
    return aligned_e, aligned_a


def check_parity(reference: Backend, candidate: Backend, feeds: dict[str, dict[str, np.ndarray]],
            atol: float = DEFAULT_ATOL, heatmap_of: Backend | None = None) -> list[ParityRow]:
    """Max abs difference per output; in-graph decode outputs are first paired up to ties, judged on the
    reference heatmap that ``heatmap_of`` (the same model without the decode) gives."""
    rows = []
    for case, feed in feeds.items():
        expected, actual = reference(feed), candidate(feed)
        if heatmap_of is not None and len(next(iter(expected.values()))) == 1:
            expected, actual = align_topk(expected, actual, atol, heatmap_of(feed)["hm"][0])
        for name, ref in expected.items():
            diff = float(np.max(np.abs(actual[name].astype(np.float64) - ref))) if ref.size else 0.0
            scale = float(np.max(np.abs(ref))) if ref.size else 1.0
            # Absolute for outputs within +-1 (heatmap logits, offsets), relative beyond: a trained wh head
            # predicts sizes of up to ~100 output pixels, where FP32 summation order alone moves ~1e-5.
            rows.append(ParityRow(case, name, diff, diff / (scale or 1.0), bool(diff <= atol * max(1.0, scale))))
    return rows


def standard_feeds(inputs: list[str], batch: int, h: int, w: int,
                   source_hw: tuple[int, int] | None = None) -> dict[str, dict[str, np.ndarray]]:
    return {"random": random_feed(inputs, batch, h, w, source_hw), "photo": real_feed(inputs, batch, h, w, source_hw)}
