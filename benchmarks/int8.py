"""INT8 Q/DQ vs FP32 (and PyTorch eager) for HarDNet-85 at 512x512 on ONNX Runtime CPU, in one `ctrt bench` run.

    .venv/bin/python benchmarks/int8.py [--size 512x512] [--calib 16] [--held-out 12] [--duration 10]

Steps, all through the CLI a user would run: the seeded weights of `ctrt export --random-init` saved as a CenterTrack
checkpoint, `ctrt export`, `ctrt quantize --target cpu` on a COCO-format folder of scikit-image's sample photographs
(hand-drawn boxes, and Otsu-segmented boxes on the coins photo;
annotated photos in eight flipped/cropped views), then `ctrt bench CKPT FP32.onnx INT8.onnx --interleave`.

Two seeded models are quantized (the fitted one for both targets; the tensorrt target is scored on its exact
Q/DQ arithmetic). "random": all weights random; its heatmap is thousands of near-tied peaks, so
which 100 of them pass the top-K is decided by differences far below any INT8 error (the script prints those
margins). "fitted": the same random network whose two output 1x1 convs (hm.2, wh.2) are fitted to the boxes,
backbone untouched: the cheapest way to get trained-like outputs (peaks well above the background, real box
sizes), so detection agreement measures what INT8 does to detections rather than to ties.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from ctrt.calibration.dataset import CalibrationInputs, load_coco_boxes
from ctrt.export.exporter import RANDOM_SEED
from ctrt.model.config import MEAN_BGR, STD_BGR, preset
from ctrt.model.seg import HM_PRIOR_BIAS, HarDNetSeg
from ctrt.runtime.prehm import PreHeatmapRenderer
from ctrt.runtime.preprocess import DOWN_RATIO, letterbox_affine
from run_ctrt import ctrt

# (x, y, w, h, COCO category) around the main objects of scikit-image's photographs.
OBJECTS = {"astronaut": [(140, 0, 300, 512, 1)], "chelsea": [(60, 0, 330, 300, 16)], "coffee": [(200, 20, 300, 300, 42)],
           "rocket": [(280, 100, 90, 310, 5)], "motorcycle_left": [(60, 120, 500, 350, 4)],
           "motorcycle_right": [(40, 120, 500, 350, 4)]}
COIN_CLASS = 33  # any class will do: the fitted output layer learns it


def coin_boxes(gray: np.ndarray) -> list[tuple[float, float, float, float, int]]:
    """Boxes around the coins of scikit-image's coins photo (Otsu threshold, filled regions), as one class."""
    from scipy import ndimage
    from skimage import filters, measure

    mask = ndimage.binary_fill_holes(ndimage.binary_closing(gray > filters.threshold_otsu(gray), iterations=2))
    regions = [r for r in measure.regionprops(measure.label(mask)) if 300 < r.area < 5000]
    return [(r.bbox[1], r.bbox[0], r.bbox[3] - r.bbox[1], r.bbox[2] - r.bbox[0], COIN_CLASS) for r in regions]


def views(rgb: np.ndarray, boxes: list[tuple[float, float, float, float, int]]) -> list[tuple[np.ndarray, list]]:
    """The photo flipped either way or both, each whole and as its central 80% (boxes moved and clipped along)."""
    h, w = rgb.shape[:2]
    out = []
    for flip_x in (False, True):
        for flip_y in (False, True):
            image = rgb[::-1 if flip_y else 1, ::-1 if flip_x else 1]
            moved = [(w - x - bw if flip_x else x, h - y - bh if flip_y else y, bw, bh, c) for x, y, bw, bh, c in boxes]
            out.append((image, moved))
            top, left = h // 10, w // 10
            clipped = []
            for x, y, bw, bh, c in moved:
                x0, y0 = max(x - left, 0), max(y - top, 0)
                x1, y1 = min(x + bw - left, w - 2 * left), min(y + bh - top, h - 2 * top)
                if x1 - x0 > 4 and y1 - y0 > 4:
                    clipped.append((x0, y0, x1 - x0, y1 - y0, c))
            out.append((image[top : h - top, left : w - left], clipped))
    return out


def photo_dataset(root: Path) -> tuple[Path, Path]:
    """The photographs as a COCO-format folder; the annotated ones in eight flipped/cropped views each."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    photos = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "motorcycle_left": left, "motorcycle_right": right, "hubble": data.hubble_deep_field(),
              "ihc": data.immunohistochemistry(), "retina": data.retina(), "camera": np.stack([data.camera()] * 3, 2),
              "colorwheel": data.colorwheel(), "coins": np.stack([data.coins()] * 3, 2),
              "page": np.stack([data.page()] * 3, 2), "moon": np.stack([data.moon()] * 3, 2)}
    objects = {**OBJECTS, "coins": coin_boxes(data.coins())}
    images = root / "images"
    images.mkdir()
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(1, 81)]}
    for name, rgb in photos.items():
        for image, boxes in views(rgb, objects[name]) if name in objects else [(rgb, [])]:
            index = len(coco["images"]) + 1
            cv2.imwrite(str(images / f"{index:04d}.jpg"), np.ascontiguousarray(image[:, :, ::-1]))
            coco["images"].append({"id": index, "file_name": f"{index:04d}.jpg"})
            for x, y, w, h, cat in boxes:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index,
                                            "category_id": cat, "bbox": [x, y, w, h], "iscrowd": 0})
    annotations = root / "instances.json"
    annotations.write_text(json.dumps(coco))
    return images, annotations


def seeded_model() -> HarDNetSeg:
    model = HarDNetSeg(preset("hardnet_85"))
    model.init_weights(RANDOM_SEED)  # the same weights `ctrt export --random-init` uses
    return model.eval()


def fit_output_layers(model: HarDNetSeg, images: Path, annotations: Path, size: tuple[int, int]) -> None:
    """Fit hm.2 (CenterNet focal loss on Gaussian targets) and wh.2 (ridge) to the annotated photos; rest untouched."""
    boxes = load_coco_boxes(annotations)
    coco = json.loads(annotations.read_text())
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    objects: dict[str, list[tuple[int, list[float]]]] = {}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        objects.setdefault(files[ann["image_id"]], []).append((ann["category_id"] - 1, [x, y, x + w, y + h]))
    inputs = CalibrationInputs(["image", "pre_img", "pre_hm"], size, MEAN_BGR, STD_BGR, boxes, seed=1)
    features: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(f"{head}.2").register_forward_hook(
        lambda module, args, out, head=head: features.__setitem__(head, args[0][0])) for head in ("hm", "wh")]
    oh, ow = size[0] // DOWN_RATIO, size[1] // DOWN_RATIO
    renderer = PreHeatmapRenderer(oh, ow)
    classes = sorted({c for objs in objects.values() for c, _ in objs})
    hm_x, hm_y, wh_x, wh_y = [], [], [], []
    rng = np.random.default_rng(0)
    one = np.zeros((oh, ow), np.float32)
    for index, (name, objs) in enumerate(objects.items()):
        frame = cv2.imread(str(images / name))
        with torch.no_grad():
            model(*(torch.from_numpy(v[None]) for v in inputs.sample(images / name, index).values()))
        to_out = letterbox_affine((frame.shape[1] / 2, frame.shape[0] / 2), max(frame.shape[:2]), ow, oh)
        target = np.zeros((len(classes), oh, ow), np.float32)
        for c, box in objs:
            renderer.render(np.array([box], np.float32), to_out, one)
            np.maximum(target[classes.index(c)], one, out=target[classes.index(c)])
            (x0, y0), (x1, y1) = np.array([[box[0], box[1], 1], [box[2], box[3], 1]], np.float32) @ to_out.T
            wh_x.append(features["wh"][:, int((y0 + y1) / 2), int((x0 + x1) / 2)])
            wh_y.append([x1 - x0, y1 - y0])
        # Every pixel near an object and a seeded tenth of the rest keep the fit small.
        flat = target.reshape(len(classes), -1).T
        keep = torch.from_numpy((flat.max(1) > 0.01) | (rng.random(len(flat)) < 0.1))
        hm_x.append(features["hm"].flatten(1).T[keep])
        hm_y.append(torch.from_numpy(flat)[keep])
    for hook in hooks:
        hook.remove()
    x, y = torch.cat(hm_x), torch.cat(hm_y)
    mean, std = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / std
    weight = torch.zeros(len(classes), x.shape[1], requires_grad=True)
    bias = torch.full((len(classes),), HM_PRIOR_BIAS, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.01)
    positive = y.eq(1).float()
    for _ in range(400):
        p = torch.sigmoid(x @ weight.T + bias).clamp(1e-4, 1 - 1e-4)
        loss = -(positive * (1 - p) ** 2 * torch.log(p)
                 + (1 - positive) * (1 - y) ** 4 * p**2 * torch.log(1 - p)).sum() / positive.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        hm2, wh2 = model.get_submodule("hm.2"), model.get_submodule("wh.2")
        hm2.weight.zero_()
        hm2.bias.fill_(-4.6)  # classes without examples: sigmoid 0.01, as training leaves them
        hm2.weight[classes, :, 0, 0] = weight / std
        hm2.bias[classes] = bias - (weight / std) @ mean
        a = torch.cat([torch.stack(wh_x), torch.ones(len(wh_x), 1)], 1)
        solution = torch.linalg.solve(a.T @ a + torch.eye(a.shape[1]), a.T @ torch.tensor(np.array(wh_y, np.float32)))
        wh2.weight[:, :, 0, 0] = solution[:-1].T
        wh2.bias[:] = solution[-1]


def tie_margins(model: HarDNetSeg, images: Path, size: tuple[int, int], k: int = 100) -> dict[str, float]:
    """On one photo: how many heatmap peaks pass 0.3, and by how much the top-K peaks beat their 8 neighbours."""
    inputs = CalibrationInputs(["image", "pre_img", "pre_hm"], size, MEAN_BGR, STD_BGR, seed=0)
    with torch.no_grad():
        hm = model(*(torch.from_numpy(v[None]) for v in inputs.sample(images / "0001.jpg", 0).values()))[0][0].numpy()
    ring = np.ones((3, 3), np.uint8)
    ring[1, 1] = 0
    neighbours = np.stack([cv2.dilate(channel, ring) for channel in hm])
    peaks = hm > neighbours
    logits, margins = hm[peaks], (hm - neighbours)[peaks]
    top = margins[np.argsort(-logits)[:k]]
    return {"peaks_above_0.3": int((logits > np.log(0.3 / 0.7)).sum()), "top_k_margin_median": float(np.median(top)),
            "top_k_margin_p90": float(np.percentile(top, 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--calib", type=int, default=16)
    parser.add_argument("--held-out", type=int, default=12)
    parser.add_argument("--method", default="minmax")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    assert len(size) == 2
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, annotations = photo_dataset(root)
        accuracy, paths = {}, {}
        for name in ("random", "fitted"):
            model = seeded_model()
            if name == "fitted":
                fit_output_layers(model, images, annotations, (size[0], size[1]))
            else:
                margins = tie_margins(model, images, (size[0], size[1]))
            ckpt, fp32, int8 = root / f"{name}.pth", root / f"{name}.onnx", root / f"{name}_int8.onnx"
            torch.save({"epoch": 0, "state_dict": model.state_dict()}, ckpt)
            ctrt("export", ckpt, "--input-size", args.size, "-o", fp32)
            for target in ("cpu", "tensorrt") if name == "fitted" else ("cpu",):
                out = int8 if target == "cpu" else root / f"{name}_{target}.onnx"
                ctrt("quantize", fp32, "--target", target, "--calib-images", images, "--calib-annotations",
                     annotations, "--calib-count", args.calib, "--held-out", args.held_out, "--method", args.method,
                     "-o", out)
                report = json.loads(out.with_name(out.name + ".accuracy.json").read_text())
                accuracy[f"{name}, target {target}"] = {
                    **{k: report[k] for k in ("images", "fp32_detections", "matched", "agreement", "mean_score_diff",
                                              "missed_scores")},
                    "sqnr_db": {h["head"]: round(h["sqnr_db"], 1) for h in report["heads"]}}
            paths[name] = (ckpt, fp32, int8)
        ckpt, fp32, int8 = paths["fitted"]  # latency does not depend on the weights' values
        bench_json = root / "bench.json"
        # Interleaved: the models take turns, so load drifting on this shared VM cannot bias the ratios.
        table = ctrt("bench", ckpt, fp32, int8, "--input-size", args.size, "--duration", args.duration,
                     "--interleave", "--json", bench_json)
        bench = json.loads(bench_json.read_text())
    print(table)
    models = {Path(m["model"]).name: m for m in bench["models"]}
    e2e = {k: m["pipeline"]["end_to_end"]["median"] for k, m in models.items()}
    bare = {k: m["bare"]["latency"]["median"] for k, m in models.items()}
    print(json.dumps({
        "size": args.size, "calibration_images": args.calib, "held_out_images": args.held_out, "method": args.method,
        "target": "cpu", "end_to_end_median_ms": e2e, "bare_median_ms": bare,
        "int8_speedup_vs_fp32": {"end_to_end": round(e2e[fp32.name] / e2e[int8.name], 2),
                                 "bare": round(bare[fp32.name] / bare[int8.name], 2)},
        "onnxruntime_fp32_speedup_vs_pytorch": round(e2e[ckpt.name] / e2e[fp32.name], 2),
        "random_model_heatmap": margins, "accuracy": accuracy,
    }, indent=2))


if __name__ == "__main__":
    main()
