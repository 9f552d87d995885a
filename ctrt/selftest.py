"""``ctrt selftest``: prove the toolchain on this device in one command.

Exports the built-in demo model (checked against PyTorch) and tracks a demo scene, where it must find the photographs,
on ONNX Runtime; then, where TensorRT is present, builds FP32 and FP16 engines and compares their outputs and the
tracks they produce, frame for frame, with ONNX Runtime's, Polygraphy-style (max abs per output).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CtrtError

SIZE = (256, 256)  # the demo model's own size
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
    """Share of boxes, over all frames, that have a counterpart with IoU >= 0.5 (greedy, one to one); 0 when the
    two runs differ in length or neither found anything (a scene with objects must give boxes)."""
    from .runtime.detections import iou_matrix, pairs_by_iou

    if len(reference) != len(candidate):
        return 0.0
    matched = total = 0
    for a, b in zip(reference, candidate, strict=True):
        total += max(len(a), len(b))
        if len(a) and len(b):
            matched += len(pairs_by_iou(iou_matrix(a, b)))
    return matched / total if total else 0.0


def _tracks(backend: object, video: Path) -> list[np.ndarray]:
    from .runtime.pipeline import Session
    from .runtime.sources import FrameSource

    session = Session(backend)  # type: ignore[arg-type]
    return [session.update(frame).boxes.copy() for frame in FrameSource(str(video))]


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
        source = source_model(None, builtin="demo")
        onnx_path = folder / "selftest.onnx"
        exported = run_export(source, onnx_path, ExportOptions(*SIZE))
        worst = max(r.max_abs for r in exported.parity)
        add("export + ONNX Runtime vs PyTorch", "PASS", f"max abs {worst:.1e} over 4 heads")
        video = make_demo_video(folder / "video.mp4", FRAMES)
        onnx_backend = OnnxRuntimeBackend(onnx_path, "cpu")
        reference_tracks = _tracks(onnx_backend, video)
        boxes = sum(map(len, reference_tracks))
        found = len(reference_tracks) == FRAMES and all(len(frame) for frame in reference_tracks)
        add("tracker on ONNX Runtime", "PASS" if found else "FAIL",
            f"{len(reference_tracks)}/{FRAMES} frames, {boxes} boxes"
            + ("" if found else "; the demo scene's photographs must be found in every frame"))
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
