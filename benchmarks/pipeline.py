"""Host-side cost of the tracker loop for a 1280x720 frame and a 512x512 HarDNet-85, against inference.

    .venv/bin/python benchmarks/pipeline.py [--iterations 300] [--tracks 30]

Stages are timed over real inputs: a 1280x720 frame of photographs, the model's own heads for it (random weights,
so the heatmap is dense: the decode's slow path), and a tracker holding --tracks tracks. CenterTrack's own
formulation of the pre-processing (float64 normalisation, then a transpose) is timed beside ours.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ctrt.demo import make_demo_video
from ctrt.export.exporter import run_export, source_model
from ctrt.export.onnx_export import ExportOptions
from ctrt.model.config import MEAN_BGR, STD_BGR
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ctrt.runtime.decode import Decoder
from ctrt.runtime.prehm import PreHeatmapRenderer
from ctrt.runtime.preprocess import Preprocessor
from ctrt.runtime.tracker import PRESETS, Tracker
from tracker_cost import crowd


def timed(fn: Callable[[], object], iterations: int) -> dict[str, float]:
    fn()
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(float(np.median(samples)), 3), "p99_ms": round(float(np.percentile(samples, 99)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--tracks", type=int, default=30)
    parser.add_argument("--inference-runs", type=int, default=5)
    args = parser.parse_args()
    h = w = 512
    with tempfile.TemporaryDirectory() as tmp:
        video = make_demo_video(Path(tmp) / "v.mp4", frames=2, size=(1280, 720))
        frame = cv2.VideoCapture(str(video)).read()[1]
        source = source_model(None, "hardnet_85")
        onnx_path = Path(tmp) / "m.onnx"
        run_export(source, onnx_path, ExportOptions(h, w), check=False)
        backend = OnnxRuntimeBackend(onnx_path, "cpu")

        pre = Preprocessor(h, w)
        image = np.empty((1, 3, h, w), np.float32)
        geometry = pre(frame, image[0])
        feed = {"image": image, "pre_img": image.copy(), "pre_hm": np.zeros((1, 1, h, w), np.float32)}
        inference = timed(lambda: backend(feed), args.inference_runs)
        heads = {k: v[0] for k, v in backend(feed).items()}

    mean, std = np.array(MEAN_BGR, np.float32), np.array(STD_BGR, np.float32)

    def centertrack_preprocess() -> np.ndarray:
        warped = cv2.warpAffine(frame, geometry.to_input, (w, h), flags=cv2.INTER_LINEAR)
        return ((warped / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1).copy()

    dets = crowd(args.tracks)
    boxes = dets.boxes
    tracker, robust = Tracker(), Tracker(PRESETS["robust"])
    tracker.step(dets)
    robust.step(dets)
    renderer = PreHeatmapRenderer(h, w)
    pre_hm = np.zeros((h, w), np.float32)
    decoder = Decoder(80, h // 4, w // 4)
    sparse_heads = dict(heads, hm=heads["hm"] - 6)  # what a trained model's mostly-empty heatmap looks like

    def track(with_tracker: Tracker) -> None:
        with_tracker.tracks = dets
        with_tracker.step(dets)

    stages = {
        "preprocess": timed(lambda: pre(frame, image[0]), args.iterations),
        "pre_hm": timed(lambda: renderer.render(boxes, geometry.to_input, pre_hm), args.iterations),
        "decode_dense": timed(lambda: decoder(heads, geometry), args.iterations),
        "decode_sparse": timed(lambda: decoder(sparse_heads, geometry), args.iterations),
        "track": timed(lambda: track(tracker), args.iterations),
        "track_robust": timed(lambda: track(robust), args.iterations),  # --tracker-preset robust
    }
    reference = timed(centertrack_preprocess, args.iterations)
    totals = {heatmap: round(sum(stages[s]["median_ms"] for s in ("preprocess", "pre_hm", decode, "track")), 2)
              for heatmap, decode in (("sparse (trained-like)", "decode_sparse"), ("dense (random weights)", "decode_dense"))}
    print(json.dumps({
        "frame": "1280x720", "model": "hardnet_85 512x512 (ONNX Runtime CPU)", "tracks": args.tracks,
        "stages": stages, "host_total_median_ms": totals, "inference_median_ms": inference["median_ms"],
        "host_over_inference": {k: round(v / inference["median_ms"], 4) for k, v in totals.items()},
        "centertrack_style_preprocess": reference,
        "preprocess_speedup_vs_centertrack_style": round(reference["median_ms"] / stages["preprocess"]["median_ms"], 1),
        "decoded_detections_dense": len(decoder(heads, geometry)),
    }, indent=2))


if __name__ == "__main__":
    main()
