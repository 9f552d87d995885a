"""``ctrt selftest``: prove the toolchain on this device in one command.

Exports a small seeded model (checked against PyTorch), then, where TensorRT is present, builds FP32 and FP16 engines
and compares their outputs and the tracks they produce with ONNX Runtime's, Polygraphy-style (max abs per output).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CtrtError

SIZE = (128, 160)
FRAMES = 6
# TensorRT may run FP32 convolutions as TF32 on Ampere/Orin (10-bit mantissa): errors of 1e-3 relative are normal.
TOLERANCE = {"fp32": 2e-2, "fp16": 1e-1}
MIN_TRACK_AGREEMENT = {"fp32": 0.95, "fp16": 0.85}


@dataclass
class Result:
    step: str
    status: str  # PASS, FAIL, SKIP
    detail: str


def track_agreement(reference: list[np.ndarray], candidate: list[np.ndarray]) -> float:
    """Share of boxes, over all frames, that have a counterpart with IoU >= 0.5 (greedy, one to one)."""
    from .runtime.detections import iou_matrix, pairs_by_iou

    matched = total = 0
    for a, b in zip(reference, candidate):
        total += max(len(a), len(b))
        if len(a) and len(b):
            matched += len(pairs_by_iou(iou_matrix(a, b)))
    return matched / total if total else 1.0


def _tracks(backend: object, video: Path) -> list[np.ndarray]:
    from .runtime.pipeline import TrackingPipeline
    from .runtime.sources import FrameSource

    pipeline = TrackingPipeline(backend)  # type: ignore[arg-type]
    return [pipeline(frame).boxes.copy() for frame in FrameSource(str(video))]


def run_selftest(report: Callable[[Result], None]) -> list[Result]:
    from .demo import make_demo_video
    from .engines.builder import BuildOptions, build_engine
    from .runtime.tensorrt_import import require_tensorrt
    from .export.exporter import run_export, source_model
    from .export.onnx_export import ExportOptions
    from .export.parity import standard_feeds
    from .runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from .runtime.backends.tensorrt_backend import TensorRTBackend

    results: list[Result] = []

    def add(step: str, status: str, detail: str) -> None:
        results.append(Result(step, status, detail))
        report(results[-1])

    with tempfile.TemporaryDirectory(prefix="ctrt-selftest-") as tmp:
        folder = Path(tmp)
        source = source_model(None, "hardnet_68")
        onnx_path = folder / "selftest.onnx"
        exported = run_export(source, onnx_path, ExportOptions(*SIZE))
        worst = max(r.max_abs for r in exported.parity)
        add("export + ONNX Runtime vs PyTorch", "PASS", f"max abs {worst:.1e} over 4 heads, 2 inputs")
        video = make_demo_video(folder / "video.mp4", FRAMES, size=(320, 240))
        onnx_backend = OnnxRuntimeBackend(onnx_path, "cpu")
        reference_tracks = _tracks(onnx_backend, video)
        add("tracker on ONNX Runtime", "PASS", f"{FRAMES} frames, {sum(map(len, reference_tracks))} boxes")
        try:
            require_tensorrt()
        except CtrtError as exc:
            add("TensorRT FP32 / FP16", "SKIP", str(exc).split(";")[0])
            return results
        feed = standard_feeds(exported.meta.inputs, 1, *SIZE)["photo"]
        expected = onnx_backend(feed)
        for precision in ("fp32", "fp16"):
            engine = folder / f"selftest_{precision}.engine"
            build_engine(onnx_path, engine, BuildOptions(fp16=precision == "fp16"))
            with TensorRTBackend(engine) as backend:
                outputs = backend(feed)
                errors = {name: float(np.abs(outputs[name] - expected[name]).max()) for name in expected}
                agreement = track_agreement(reference_tracks, _tracks(backend, video))
            ok = max(errors.values()) <= TOLERANCE[precision] and agreement >= MIN_TRACK_AGREEMENT[precision]
            add(f"TensorRT {precision.upper()} vs ONNX Runtime", "PASS" if ok else "FAIL",
                ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
                + f" (tolerance {TOLERANCE[precision]:g}); tracks agree {agreement:.0%}")
    return results
