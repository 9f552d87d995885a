"""Fit the built-in demo model's output layers to the generated demo scenes, and score it on scenes it never saw.

    .venv/bin/python benchmarks/demo_model.py            # refit, compare with the shipped asset, score
    .venv/bin/python benchmarks/demo_model.py --write    # refit and replace ctrt/assets/demo_heads.npz
    .venv/bin/python benchmarks/demo_model.py --int8     # INT8 (ctrt quantize --target cpu) agreement with FP32
    .venv/bin/python benchmarks/demo_model.py --score-only [--centertrack] [--score-seeds 106 107 ...]

The backbone keeps the seeded random weights of ``ctrt export --random-init``. On features of generated frames fed
as the runtime feeds them (letterbox, previous frame as pre_img, the previous frame's boxes in pre_hm, disturbed as
the reference fork's training disturbs them: some dropped, jittered, duplicated):
- the heatmap head (its 3x3 trunk, starting from the seeded weights, and its 1x1 output) is trained with CenterNet's
  focal loss on Gaussian targets (Adam, seeded batch order), for the four classes of the scene (a linear layer on
  random features cannot tell a photograph's centre from its edges or the backdrop); photographs under half in view
  are left out of the loss; then its bias is raised until 95% of the objects' centre peaks in held-out scenes
  (seeds 50-53) clear the 0.3 threshold;
- reg.2, wh.2, tracking.2 (1x1, on the seeded trunks) are ridge regressions at the objects' centre pixels (sub-pixel
  offset, size, and displacement to the previous frame's centre, in output-map pixels).
Two threads in a fixed order, so a refit is repeatable on one machine with one torch and numpy. Then the shipped model
is exported and tracked with ``ctrt run`` on fresh seeds (at the demo's operating point, ``ctrt.demo.DEMO_RUN_OPTIONS``,
or with ``--centertrack`` CenterTrack's tracker at 0.3) and scored with CLEAR MOT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ctrt.demo import DEMO_RUN_OPTIONS, DemoScene
from ctrt.eval.clear_mot import score_sequence
from ctrt.model.builtin import DEMO_ASSET, DEMO_SEED, FIT_SIZE, seeded_backbone
from ctrt.model.seg import HM_PRIOR_BIAS
from ctrt.outputs import atomic_output
from ctrt.runtime.prehm import PreHeatmapRenderer
from ctrt.runtime.preprocess import DOWN_RATIO, Preprocessor, letterbox_affine
from run_ctrt import ctrt

FIT_SEEDS = range(0, 50)  # seed 0 is the scene `ctrt demo` shows
CALIBRATION_SEEDS = range(50, 54)  # held out from the fit, and from the scoring seeds (100+)
EPOCHS = 6
BATCH = 8
LEARNING_RATE = 1e-3
RIDGE = 1.0
THREADS = 2
CENTRE_SCORE = 0.3  # CenterTrack's default --track-thresh
# A photograph partly in view but not counted (under half of it seen) is neither a centre to find nor background
# to suppress: its centre blob is left out of the loss, as the scoring leaves it out ("don't care").
PARTLY_SEEN = 0.2
DONT_CARE = -1.0
# The reference fork's training disturbs pre_hm as CenterTrack does, so the model neither depends on last frame's
# blob (a photograph the tracker lost must still be found) nor copies it: each blob is dropped with probability 0.4,
# its centre jittered by 5% of the box, and with probability 0.1 a second blob drawn near it.
LOST_DISTURB, HM_DISTURB, FP_DISTURB = 0.4, 0.05, 0.1
FIT_TIMES = range(0, 72, 3)  # frames of each fitting scene: spread over its motion, each fed after the frame before


def content_rows(h: int, w: int, frame_hw: tuple[int, int]) -> slice:
    """Output-map rows that hold the letterboxed frame, plus a margin of padding the heatmap must stay quiet on."""
    oh = h // DOWN_RATIO
    content = round(oh * min(1.0, frame_hw[0] / frame_hw[1] * w / h))
    top = (oh - content) // 2
    return slice(max(top - 4, 0), min(top + content + 4, oh))


def disturbed(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Last frame's boxes as pre_hm shows them in training: centres jittered, some lost, a few false duplicates."""
    def jitter(b: np.ndarray) -> np.ndarray:
        return b + np.tile(rng.normal(0, HM_DISTURB, (len(b), 2)) * (b[:, 2:] - b[:, :2]), 2)

    shifted = jitter(boxes)
    duplicates = jitter(boxes[rng.random(len(boxes)) < FP_DISTURB])
    return np.concatenate([shifted[rng.random(len(boxes)) >= LOST_DISTURB], duplicates]).astype(np.float32)


def features_and_targets(seed: int, times: Iterable[int]) -> dict[str, list[np.ndarray]]:
    """Run the seeded network on frames ``times`` of one generated sequence, each fed as the runtime feeds it after
    the frame before (pre_img, and pre_hm from that frame's counted boxes, disturbed); keep what the heads see and
    what they should say."""
    rng = np.random.default_rng([DEMO_SEED, seed])
    model = seeded_backbone()
    h, w = FIT_SIZE
    oh, ow = h // DOWN_RATIO, w // DOWN_RATIO
    scene = DemoScene(seed=seed)
    rows = content_rows(h, w, scene.size[::-1])
    preprocess = Preprocessor(h, w)
    renderer = PreHeatmapRenderer(h, w)
    target_renderer = PreHeatmapRenderer(oh, ow)
    captured: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(layer).register_forward_hook(
        lambda module, args, out, name=layer: captured.__setitem__(name, args[0][0]))
        for layer in ("hm", "reg.2", "wh.2", "tracking.2")]
    image = np.empty((1, 3, h, w), np.float32)
    previous = np.empty_like(image)
    pre_hm = np.zeros((1, 1, h, w), np.float32)
    one = np.zeros((oh, ow), np.float32)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("hm_x", "hm_y", "reg_x", "reg_y", "wh_x", "wh_y",
                                                         "tracking_x", "tracking_y")}
    for t in times:
        frame, truth = scene.frame(t)
        last_frame, last_truth = scene.frame(t - 1) if t > 0 else (frame, None)
        preprocess(last_frame, previous[0])
        geometry = preprocess(frame, image[0])
        last_boxes = last_truth.boxes[last_truth.counted] if last_truth else np.zeros((0, 4), np.float32)
        renderer.render(disturbed(last_boxes, rng), geometry.to_input, pre_hm[0, 0])
        with torch.no_grad():
            model(torch.from_numpy(image), torch.from_numpy(previous), torch.from_numpy(pre_hm))
        to_out = letterbox_affine((frame.shape[1] / 2, frame.shape[0] / 2), max(frame.shape[:2]), ow, oh)
        target = np.zeros((len(scene.classes), oh, ow), np.float32)
        for i in np.flatnonzero(~truth.counted & (truth.visible >= PARTLY_SEEN)):
            target_renderer.render(truth.boxes[i][None], to_out, one)
            target[i][one > 0] = DONT_CARE
        for i in np.flatnonzero(truth.counted):
            target_renderer.render(truth.boxes[i][None], to_out, one)
            np.maximum(target[i], one, out=target[i])
            corners = map_corners(truth.boxes[i], to_out)
            centre = corners.mean(0)
            px, py = np.clip(centre.astype(int), 0, [ow - 1, oh - 1])
            out["reg_x"].append(captured["reg.2"][:, py, px].numpy())
            out["reg_y"].append(centre - [px, py])
            out["wh_x"].append(captured["wh.2"][:, py, px].numpy())
            out["wh_y"].append(corners[1] - corners[0])
            if last_truth is not None and last_truth.counted[i]:
                out["tracking_x"].append(captured["tracking.2"][:, py, px].numpy())
                out["tracking_y"].append(map_corners(last_truth.boxes[i], to_out).mean(0) - centre)
        out["hm_x"].append(captured["hm"][:, rows].numpy().copy())
        out["hm_y"].append(target[:, rows])
    for hook in hooks:
        hook.remove()
    return out


def map_corners(box: np.ndarray, to_out: np.ndarray) -> np.ndarray:
    """An xyxy frame box's corners on the output map, [[x0, y0], [x1, y1]]."""
    return np.array([[box[0], box[1], 1], [box[2], box[3], 1]], np.float64) @ to_out.T


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's (alpha 2, beta 4), normalised by the number of object centres."""
    p = torch.sigmoid(logits).clamp(1e-6, 1 - 1e-6)
    positive = target.eq(1).float()
    negative = (1 - positive) * (1 - target) ** 4 * target.ge(0)  # DONT_CARE pixels: no loss either way
    loss = -(positive * (1 - p) ** 2 * torch.log(p) + negative * p**2 * torch.log(1 - p))
    return loss.sum() / positive.sum().clamp(min=1)


def fit_heatmap(x: np.ndarray, y: np.ndarray, held_out: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Train the heatmap head (seeded 3x3 trunk + 1x1 output for the scene's classes) on cached head inputs."""
    head = seeded_backbone().get_submodule("hm")
    trunk = head[0]
    out = torch.nn.Conv2d(trunk.out_channels, y.shape[1], 1)
    generator = torch.Generator().manual_seed(DEMO_SEED)
    with torch.no_grad():
        out.weight.copy_(torch.randn(out.weight.shape, generator=generator) * 0.01)
        out.bias.fill_(HM_PRIOR_BIAS)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam([*trunk.parameters(), *out.parameters()], lr=LEARNING_RATE)
    for epoch in range(EPOCHS):
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            loss = focal_loss(out(torch.relu(trunk(inputs[batch]))), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"  heatmap epoch {epoch + 1}/{EPOCHS}: focal loss {total / len(order):.3f}", flush=True)
    # Peaks on training frames are surer than on unseen scenes: on held-out scenes, raise the bias until 95% of
    # the objects' centre peaks (best logit within a pixel of the centre) clear CenterTrack's 0.3 threshold.
    held_x, held_y = torch.from_numpy(held_out[0]), torch.from_numpy(held_out[1])
    with torch.no_grad():
        logits = torch.cat([out(torch.relu(trunk(held_x[i : i + BATCH]))) for i in range(0, len(held_x), BATCH)])
        peaks = torch.nn.functional.max_pool2d(logits, 3, 1, 1)[held_y.eq(1)]
        shift = float(np.clip(np.log(CENTRE_SCORE / (1 - CENTRE_SCORE)) - np.quantile(peaks.numpy(), 0.05), 0, 1))
        out.bias += shift
    print(f"  heatmap bias raised by {shift:.2f}", flush=True)
    # Shipped in float16 (the asset stays small); the model runs them as float32.
    return {"hm.0.weight": trunk.weight.detach().numpy().astype(np.float16),
            "hm.0.bias": trunk.bias.detach().numpy().astype(np.float16),
            "hm.2.weight": out.weight.detach().numpy()[:, :, 0, 0].astype(np.float16),
            "hm.2.bias": out.bias.detach().numpy().astype(np.float16)}


def fit_ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([x.astype(np.float64), np.ones((len(x), 1))], 1)
    solution = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1]), a.T @ np.asarray(y, np.float64))
    return solution[:-1].T.astype(np.float32), solution[-1].astype(np.float32)


def refit() -> dict[str, np.ndarray]:
    data: dict[str, list[np.ndarray]] = {}
    for seed in FIT_SEEDS:
        for key, values in features_and_targets(seed, FIT_TIMES).items():
            data.setdefault(key, []).extend(values)
    print(f"  features of {len(data['hm_x'])} frames", flush=True)
    held = [features_and_targets(seed, FIT_TIMES) for seed in CALIBRATION_SEEDS]
    held_out = np.stack([x for h in held for x in h["hm_x"]]), np.stack([y for h in held for y in h["hm_y"]])
    asset = {"seed": np.array(DEMO_SEED), "fit_size": np.array(FIT_SIZE), "classes": DemoScene().classes,
             **fit_heatmap(np.stack(data.pop("hm_x")), np.stack(data.pop("hm_y")), held_out)}
    for head in ("reg", "wh", "tracking"):
        weight, bias = fit_ridge(np.stack(data[f"{head}_x"]), np.stack(data[f"{head}_y"]))
        asset[f"{head}.2.weight"], asset[f"{head}.2.bias"] = weight, bias
    return asset


def digest(asset: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(asset):
        h.update(key.encode())
        h.update(np.ascontiguousarray(asset[key]).tobytes())
    return h.hexdigest()


def score_on_fresh_scenes(seeds: list[int], frames: int, run_options: list[str]) -> list[dict[str, float]]:
    """Export the shipped demo model and track generated videos of unseen seeds with ``ctrt run``."""
    from ctrt.demo import make_demo_video

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "demo.onnx"
        ctrt("export", "--builtin", "demo", "--input-size", "x".join(map(str, FIT_SIZE)), "-o", model)
        for seed in seeds:
            video = make_demo_video(root / f"s{seed}.avi", frames, seed=seed)
            ctrt("run", model, "--source", video, "--save-json", root / f"s{seed}.jsonl", *run_options)
            lines = [json.loads(line) for line in (root / f"s{seed}.jsonl").read_text().splitlines()]
            scene = DemoScene(seed=seed)
            truth = [(t.boxes, t.ids, t.counted) for t in (scene.frame(i)[1] for i in range(frames))]
            tracks = [(np.array([r["bbox"] for r in f["results"] if r["shown"]]).reshape(-1, 4),
                       np.array([r["tracking_id"] for r in f["results"] if r["shown"]])) for f in lines]
            results.append({"seed": seed, **score_sequence(truth, tracks).summary()})
    return results


def demo_coco(root: Path, seeds: range, frames: int) -> tuple[Path, Path]:
    """Generated demo frames as a COCO-format folder (images + instances JSON from the scenes' ground truth)."""
    import cv2

    images = root / "images"
    images.mkdir()
    coco: dict = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(1, 81)]}
    for seed in seeds:
        scene = DemoScene(seed=seed)
        for t in range(0, frames * 3, 3):
            frame, truth = scene.frame(t)
            index = len(coco["images"]) + 1
            cv2.imwrite(str(images / f"{index:05d}.jpg"), frame)
            coco["images"].append({"id": index, "file_name": f"{index:05d}.jpg"})
            for (x0, y0, x1, y1), cls in zip(truth.boxes[truth.counted].tolist(), truth.classes[truth.counted].tolist()):
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index,
                                            "category_id": int(cls), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                            "iscrowd": 0})
    annotations = root / "instances.json"
    annotations.write_text(json.dumps(coco))
    return images, annotations


def int8_agreement(calib: int, held_out: int) -> dict:
    """``ctrt quantize --target cpu`` on the demo model, calibrated and judged on generated frames of unseen seeds."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "demo.onnx"
        ctrt("export", "--builtin", "demo", "--input-size", "x".join(map(str, FIT_SIZE)), "-o", model)
        images, annotations = demo_coco(root, range(200, 200 + (calib + held_out + 9) // 10), 10)
        ctrt("quantize", model, "--target", "cpu", "--calib-images", images, "--calib-annotations", annotations,
             "--calib-count", calib, "--held-out", held_out, "-o", root / "demo_int8.onnx")
        report = json.loads((root / "demo_int8.onnx.accuracy.json").read_text())
    return {k: report[k] for k in ("images", "fp32_detections", "matched", "agreement", "mean_score_diff",
                                   "missed_scores")} | {"sqnr_db": {h["head"]: round(h["sqnr_db"], 1)
                                                                     for h in report["heads"]}}


def refit_and_compare(write: bool) -> None:
    torch.set_num_threads(THREADS)  # a fixed thread count: a fixed summation order, a repeatable refit
    start = time.perf_counter()
    asset = refit()
    fitted = digest(asset)
    print(f"refit in {time.perf_counter() - start:.0f} s, sha256 of the arrays {fitted[:16]}")
    if write:
        with atomic_output(DEMO_ASSET) as tmp, tmp.open("wb") as fh:
            np.savez_compressed(fh, **asset)
        print(f"wrote {DEMO_ASSET} ({DEMO_ASSET.stat().st_size / 1e3:.0f} kB)")
    else:
        with np.load(DEMO_ASSET) as shipped:
            same = digest(dict(shipped)) == fitted
        print(f"shipped asset {'reproduced bit for bit' if same else 'DIFFERS from the refit'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the shipped asset with the refit")
    parser.add_argument("--score-seeds", type=int, nargs="*", default=list(range(100, 106)))
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--int8", action="store_true", help="only: INT8 (--target cpu) agreement with FP32")
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--centertrack", action="store_true",
                        help="score with CenterTrack's tracker at 0.3 instead of the demo's operating point")
    parser.add_argument("--score-only", action="store_true", help="skip the refit (about 10 minutes on 2 cores)")
    args = parser.parse_args()
    if args.int8:
        print(json.dumps(int8_agreement(args.calib, args.held_out), indent=1))
        return
    if not args.score_only:
        refit_and_compare(args.write)
    if not args.score_seeds:
        return
    scores = score_on_fresh_scenes(args.score_seeds, args.frames, [] if args.centertrack else DEMO_RUN_OPTIONS)
    print(json.dumps(scores, indent=1))
    keys = ("mota", "precision", "recall", "id_consistency", "min_id_consistency", "min_one_id")
    print("mean over seeds: " + ", ".join(f"{k} {np.mean([s[k] for s in scores]):.3f}" for k in keys)
          + f", id switches {sum(s['id_switches'] for s in scores)}")


if __name__ == "__main__":
    main()
