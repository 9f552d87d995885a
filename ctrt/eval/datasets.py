"""``ctrt make-data``: evaluation sets with exact ground truth, written whole or not at all.

- ``pedestrians``: MOTChallenge sequences of generated street scenes (people crossing and covering each other,
  some walking in groups side by side, some turning back near the scene's counting lines, written as ``lines.txt``),
  ground truth only (``ctrt eval --tracker-only``);
- ``demo-mot``: MOTChallenge sequences of the demo scene (frames in ``img1/``), every photograph labelled as a
  pedestrian, so TrackEval scores them (``ctrt eval MODEL --mot DIR --classes all``);
- ``demo-coco``: demo-scene images with a COCO instances file, each photograph in its COCO category.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..demo import DemoScene
from ..errors import CtrtError
from ..outputs import atomic_folder
from .coco import COCO_IDS
from .mot import LINES_FILE
from .synthetic import SCENE_LINES, pedestrian_truth, write_sequence

KINDS = ("pedestrians", "demo-mot", "demo-coco")
COCO_NAMES = {1: "person", 5: "airplane", 16: "cat", 42: "cup"}  # the demo's photographs, CenterTrack numbering


def make_dataset(kind: str, output: Path, count: int, frames: int, size: tuple[int, int], seed: int) -> None:
    if kind not in KINDS:
        raise CtrtError(f"{kind!r}: choose {', '.join(KINDS)}")
    if output.exists():
        raise CtrtError(f"{output} exists; give a new folder")
    with atomic_folder(output) as root:
        if kind == "pedestrians":
            for i in range(count):
                write_sequence(root / f"PED-{i + 1:02d}", pedestrian_truth(frames, seed + i), frames)
                (root / f"PED-{i + 1:02d}" / LINES_FILE).write_text("\n".join(SCENE_LINES) + "\n")
        elif kind == "demo-mot":
            for i in range(count):
                _demo_sequence(root / f"DEMO-{i + 1:02d}", frames, size, seed + i)
        else:
            _demo_coco(root, count, size, seed)


def _demo_sequence(folder: Path, frames: int, size: tuple[int, int], seed: int) -> None:
    scene = DemoScene(size, seed)
    (folder / "img1").mkdir(parents=True)
    rows = []
    for t in range(frames):
        image, truth = scene.frame(t)
        cv2.imwrite(str(folder / "img1" / f"{t + 1:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        for box, obj, seen, counted in zip(truth.boxes.tolist(), truth.ids.tolist(), truth.visible.tolist(),
                                           truth.counted.tolist()):
            x1, y1, x2, y2 = box
            if x2 > x1 and y2 > y1:  # class 1: TrackEval's MOTChallenge scoring evaluates pedestrians
                rows.append((t + 1, obj, x1, y1, x2 - x1, y2 - y1, int(counted), 1, seen))
    write_sequence(folder, np.array(rows, np.float64).reshape(-1, 9), frames, size)


def _demo_coco(root: Path, count: int, size: tuple[int, int], seed: int) -> None:
    (root / "images").mkdir()
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(count):  # each image a frame of its own scene, so objects take every place and overlap
        image, truth = DemoScene(size, seed + i).frame(7 * i % 40)
        name = f"{i + 1:06d}.jpg"
        cv2.imwrite(str(root / "images" / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "width": size[0], "height": size[1]})
        for (x1, y1, x2, y2), cls, counted in zip(truth.boxes.tolist(), truth.classes.tolist(),
                                                   truth.counted.tolist()):
            if x2 > x1 and y2 > y1:  # mostly covered or cut off: a crowd region, neither to find nor to miss
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": COCO_IDS[cls - 1],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": int(not counted)})
    categories = [{"id": COCO_IDS[c - 1], "name": name} for c, name in sorted(COCO_NAMES.items())]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                       "categories": categories}))
