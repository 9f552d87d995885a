"""INT8 Q/DQ vs FP32 (and PyTorch eager) for HarDNet-85 at 512x512 on ONNX Runtime CPU, in one `ctrt bench` run.

    .venv/bin/python benchmarks/int8.py [--size 512x512] [--calib 8] [--held-out 4] [--duration 3]

Steps, all through the CLI a user would run: `ctrt export --random-init` (plus the same seeded weights saved as a
CenterTrack checkpoint for the PyTorch column), `ctrt quantize` on a COCO-format folder of scikit-image's sample
photographs with hand-drawn boxes, then `ctrt bench CKPT FP32.onnx INT8.onnx --json`. Prints the bench JSON's
medians, the INT8/FP32 latency ratios and the accuracy report. Random weights: see README for what that can show.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from ctrt.export.exporter import RANDOM_SEED
from ctrt.model.config import preset
from ctrt.model.seg import HarDNetSeg

CTRT = str(Path(sys.executable).with_name("ctrt"))
# (x, y, w, h, COCO category) around the main objects of scikit-image's photographs.
OBJECTS = {"astronaut": [(140, 0, 300, 512, 1)], "chelsea": [(60, 0, 330, 300, 16)], "coffee": [(200, 20, 300, 300, 42)],
           "rocket": [(280, 100, 90, 310, 5)], "motorcycle_left": [(60, 120, 500, 350, 4)],
           "motorcycle_right": [(40, 120, 500, 350, 4)]}


def photo_dataset(root: Path) -> tuple[Path, Path]:
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    photos = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "motorcycle_left": left, "motorcycle_right": right, "hubble": data.hubble_deep_field(),
              "ihc": data.immunohistochemistry(), "retina": data.retina(), "camera": np.stack([data.camera()] * 3, 2),
              "colorwheel": data.colorwheel(), "coins": np.stack([data.coins()] * 3, 2),
              "page": np.stack([data.page()] * 3, 2), "moon": np.stack([data.moon()] * 3, 2)}
    images = root / "images"
    images.mkdir()
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(1, 81)]}
    for index, (name, rgb) in enumerate(photos.items(), start=1):
        cv2.imwrite(str(images / f"{index:04d}.jpg"), np.ascontiguousarray(rgb[:, :, ::-1]))
        coco["images"].append({"id": index, "file_name": f"{index:04d}.jpg"})
        for x, y, w, h, cat in OBJECTS.get(name, []):
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index, "category_id": cat,
                                        "bbox": [x, y, w, h], "iscrowd": 0})
    annotations = root / "instances.json"
    annotations.write_text(json.dumps(coco))
    return images, annotations


def ctrt(*args: object) -> str:
    result = subprocess.run([CTRT, *map(str, args)], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"ctrt {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--calib", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--method", default="minmax")
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, annotations = photo_dataset(root)
        fp32, int8, ckpt = root / "hardnet_85.onnx", root / "hardnet_85_int8.onnx", root / "hardnet_85.pth"
        model = HarDNetSeg(preset("hardnet_85"))
        model.init_weights(RANDOM_SEED)  # the same weights `ctrt export --random-init` uses
        torch.save({"epoch": 0, "state_dict": model.state_dict()}, ckpt)
        ctrt("export", ckpt, "--input-size", args.size, "-o", fp32)
        ctrt("quantize", fp32, "--calib-images", images, "--calib-annotations", annotations, "--calib-count",
             args.calib, "--held-out", args.held_out, "--method", args.method, "-o", int8)
        bench_json = root / "bench.json"
        table = ctrt("bench", ckpt, fp32, int8, "--input-size", args.size, "--duration", args.duration,
                     "--json", bench_json)
        bench = json.loads(bench_json.read_text())
        accuracy = json.loads(int8.with_name(int8.name + ".accuracy.json").read_text())
    print(table)
    models = {Path(m["model"]).name: m for m in bench["models"]}
    e2e = {k: m["pipeline"]["end_to_end"]["median"] for k, m in models.items()}
    bare = {k: m["bare"]["latency"]["median"] for k, m in models.items()}
    print(json.dumps({
        "size": args.size, "calibration_images": args.calib, "method": args.method,
        "end_to_end_median_ms": e2e, "bare_median_ms": bare,
        "int8_speedup_vs_fp32": {"end_to_end": round(e2e[fp32.name] / e2e[int8.name], 2),
                                 "bare": round(bare[fp32.name] / bare[int8.name], 2)},
        "onnxruntime_fp32_speedup_vs_pytorch": round(e2e[ckpt.name] / e2e[fp32.name], 2),
        "accuracy": {k: accuracy[k] for k in ("images", "heads", "fp32_detections", "matched", "agreement",
                                               "mean_score_diff")},
    }, indent=2))


if __name__ == "__main__":
    main()
