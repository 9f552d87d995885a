"""Calibration (and held-out evaluation) inputs from a folder of images, optionally with COCO annotations.

Every tensor is made by the runtime's own pre-processing and pre_hm renderer, so calibration sees what inference sees.
The previous-frame inputs imitate CenterTrack's training: ``pre_img`` is the same photo under a slightly shifted and
scaled letterbox, and ``pre_hm`` draws the (jittered) ground-truth boxes through that same transform; without
annotations, ``pre_hm`` draws the FP32 model's own detections instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import CtrtError
from ..inputs import IMAGE_LIMIT, read_bytes, read_coco_instances
from ..runtime.prehm import PreHeatmapRenderer
from ..runtime.preprocess import Preprocessor, letterbox_affine
from ..runtime.sources import IMAGE_SUFFIXES, decode_image, read_image

SHIFT, SCALE, BOX_JITTER = 0.05, 0.05, 0.05  # CenterTrack-HarDNet's --shift, --scale and --hm_disturb
RECOMMENDED = 300

# (one image's inputs with an empty pre_hm, the frame) -> boxes in frame px to draw into pre_hm.
Detector = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


@dataclass
class Selection:
    calibration: list[Path]
    held_out: list[Path]
    unreadable: list[Path]
    checksum: str


def load_coco_boxes(annotations: Path) -> dict[str, np.ndarray]:
    """file_name -> [N, 4] xyxy boxes from a COCO instances JSON (crowd boxes skipped)."""
    if not annotations.is_file():
        raise CtrtError(f"annotations not found: {annotations}")
    data = read_coco_instances(annotations)
    files = {img["id"]: img["file_name"] for img in data["images"]}
    boxes: dict[str, list[list[float]]] = {name: [] for name in files.values()}
    for index, ann in enumerate(data["annotations"]):
        if ann["image_id"] not in files:
            raise CtrtError(f"{annotations}: annotations[{index}].image_id {ann['image_id']} is not in its images")
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        boxes[files[ann["image_id"]]].append([x, y, x + w, y + h])
    return {name: np.array(b, np.float32).reshape(-1, 4) for name, b in boxes.items()}


def select_images(folder: Path, count: int, held_out: int, seed: int, minimum: int) -> Selection:
    """A seeded draw of ``count`` readable images for calibration and ``held_out`` others for the report."""
    if not folder.is_dir():
        raise CtrtError(f"calibration image folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    order = np.random.default_rng(seed).permutation(len(paths))
    chosen: list[Path] = []
    unreadable: list[Path] = []
    digest = hashlib.sha256()
    for index in order:
        if len(chosen) == count + held_out:
            break
        path = paths[index]
        try:
            data = read_bytes(path, limit=IMAGE_LIMIT)  # a FIFO or device among the images is not read
        except CtrtError:
            data = b""
        if not data or decode_image(data) is None:
            unreadable.append(path)
            continue
        if len(chosen) < count:
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
        chosen.append(path)
    calibration = chosen[:count]
    if len(calibration) < minimum:
        raise CtrtError(f"{folder} has {len(calibration)} usable images ({len(unreadable)} unreadable); "
                        f"calibration needs at least {minimum}")
    return Selection(calibration, chosen[count:], unreadable, digest.hexdigest())


def jitter(frame_hw: tuple[int, int], input_hw: tuple[int, int], boxes: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A shifted/scaled letterbox for the 'previous frame' and the boxes moved by up to a few % of their size."""
    fh, fw = frame_hw
    side = max(fh, fw)
    scale = side * (1 + rng.uniform(-SCALE, SCALE))
    centre = (fw / 2 + rng.uniform(-SHIFT, SHIFT) * side, fh / 2 + rng.uniform(-SHIFT, SHIFT) * side)
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    shift = rng.normal(0, BOX_JITTER, size.shape).astype(np.float32) * size
    return letterbox_affine(centre, scale, input_hw[1], input_hw[0]), boxes + np.concatenate([shift, shift], axis=1)


class CalibrationInputs:
    """Feeds ``{name: [batch, ...]}`` for the model inputs, built from photos."""

    def __init__(self, inputs: list[str], input_hw: tuple[int, int], mean: tuple[float, ...], std: tuple[float, ...],
                 boxes: dict[str, np.ndarray] | None = None, detector: Detector | None = None, seed: int = 0) -> None:
        self.inputs = inputs
        self.h, self.w = input_hw
        self.preprocess = Preprocessor(self.h, self.w, mean, std)
        self.renderer = PreHeatmapRenderer(self.h, self.w)
        self.boxes, self.detector = boxes, detector
        self.seed = seed

    def sample(self, path: Path, index: int) -> dict[str, np.ndarray]:
        """One image's tensors (no batch axis). Deterministic in (seed, index)."""
        frame = read_image(path)
        if frame is None:
            raise CtrtError(f"cannot read {path}")
        image = np.empty((3, self.h, self.w), np.float32)
        self.preprocess(frame, image)
        tensors = {"image": image}
        rng = np.random.default_rng([self.seed, index])
        annotated = self.boxes.get(path.name, np.zeros((0, 4), np.float32)) if self.boxes is not None else None
        transform, jittered_boxes = jitter(frame.shape[:2], (self.h, self.w),
                                           np.zeros((0, 4), np.float32) if annotated is None else annotated, rng)
        if "pre_img" in self.inputs:
            warped = cv2.warpAffine(frame, transform, (self.w, self.h), flags=cv2.INTER_LINEAR)
            pre_img = np.empty((3, self.h, self.w), np.float32)
            self.preprocess.normalise(warped, pre_img)
            tensors["pre_img"] = pre_img
        if "pre_hm" in self.inputs:
            pre_hm = np.zeros((self.h, self.w), np.float32)
            if annotated is not None:
                boxes = jittered_boxes
            elif self.detector is not None:
                boxes = self.detector({**tensors, "pre_hm": pre_hm[None]}, frame)
            else:
                boxes = np.zeros((0, 4), np.float32)
            self.renderer.render(boxes, transform, pre_hm)
            tensors["pre_hm"] = pre_hm[None]
        return tensors

    def batches(self, paths: list[Path], batch: int) -> Iterator[dict[str, np.ndarray]]:
        """Full batches only (TensorRT's calibrator and the static engine shape need them)."""
        for start in range(0, len(paths) - batch + 1, batch):
            samples = [self.sample(p, start + i) for i, p in enumerate(paths[start : start + batch])]
            yield {name: np.stack([s[name] for s in samples]) for name in self.inputs}
