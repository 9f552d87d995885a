"""``ctrt eval --coco``: detection mAP with pycocotools, the way CenterTrack evaluates detection: every image is its
own previous frame and ``pre_hm`` is empty."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CtrtError
from ..inputs import read_coco_instances
from ..api import Model
from ..runtime.sources import read_image

# COCO's category ids of the 80 classes CenterTrack numbers 1..80 (COCO left gaps for 11 unused categories).
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)
AP_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")
SCORE_FLOOR = 0.01  # detections kept for AP: the precision-recall curve needs the low-score tail


@dataclass(frozen=True)
class CocoImages:
    annotations: Path
    images: list[tuple[int, Path]]  # (image id, file) in id order


def read_coco(annotations: Path, folder: Path, max_images: int | None = None) -> CocoImages:
    """The images an annotation file names, all checked before any work: one clear line for what is wrong."""
    data = read_coco_instances(annotations)
    images = {im["id"]: im["file_name"] for im in data["images"]}
    annotated = {a["image_id"] for a in data["annotations"]}
    categories = {c["id"] for c in data["categories"]}
    unknown = sorted(annotated - set(images))
    if unknown:
        raise CtrtError(f"{annotations}: annotations name image ids that are not in its images list "
                        f"({', '.join(map(str, unknown[:5]))}{' ...' if len(unknown) > 5 else ''})")
    strangers = sorted(categories - set(COCO_IDS))
    if strangers:
        raise CtrtError(f"{annotations}: category ids {strangers[:5]} are not COCO's 80; ctrt eval scores "
                        "COCO-class models")
    chosen = sorted(images.items())[:max_images]
    missing = [name for _, name in chosen if not (folder / name).is_file()]
    if missing:
        raise CtrtError(f"--images {folder}: {len(missing)} of the {len(chosen)} images are missing, e.g. "
                        f"{missing[0]}")
    return CocoImages(annotations, [(image_id, folder / name) for image_id, name in chosen])


def detect(model: Model, images: CocoImages, k: int = 100,
           progress: Callable[[int, int], None] = lambda i, n: None) -> list[dict]:
    """COCO results (image_id, category_id, bbox xywh, score) for every image, each detected on its own."""
    results = []
    for index, (image_id, path) in enumerate(images.images):
        frame = read_image(path)
        if frame is None:
            raise CtrtError(f"{path}: not an image OpenCV can read")
        dets = model.detect(frame, topk=k, threshold=SCORE_FLOOR)
        boxes = dets.boxes.astype(np.float64)
        for (x1, y1, x2, y2), score, cls in zip(boxes.tolist(), dets.scores.tolist(), dets.classes.tolist()):
            results.append({"image_id": image_id, "category_id": COCO_IDS[cls - 1],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
        progress(index + 1, len(images.images))
    return results


def average_precision(images: CocoImages, results: list[dict]) -> dict[str, float | None]:
    """pycocotools' bbox AP over ``images`` (AP at IoU .50:.95, AP50, AP75, small/medium/large)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise CtrtError("ctrt eval --coco needs pycocotools: pip install 'ctrt[eval]'") from None
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        truth = COCO(str(images.annotations))
        if not results:
            return dict.fromkeys(AP_NAMES, 0.0)  # nothing detected: no precision at any recall
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.imgIds = [image_id for image_id, _ in images.images]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # pycocotools gives -1 where the images hold no object of that size: None, not a score of 0
    return {name: float(v) if v >= 0 else None for name, v in zip(AP_NAMES, evaluation.stats[:6])}
