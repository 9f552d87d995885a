"""INT8 workflows behind ``ctrt quantize`` (Q/DQ ONNX) and ``ctrt build --int8`` (TensorRT calibrator)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import ArtifactMeta, CalibrationRecord, QuantRecord, embed_meta, read_meta, sha256_file, sidecar_path
from ..outputs import atomic_outputs, write_text_atomic
from ..errors import CtrtError
from ..progress import Progress
from ..runtime.backends.base import Backend
from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ..runtime.decode import Decoder
from ..runtime.preprocess import FrameGeometry
from ..runtime.tracker import TRACK_THRESH
from ..runtime.cuda_memory import CudaMemory
from .accuracy import AccuracyReport, measure_accuracy
from .cache import cache_path
from .dataset import RECOMMENDED, CalibrationInputs, Detector, load_coco_boxes, select_images

CALIBRATION_DIR = Path("calibration")


@dataclass(frozen=True)
class CalibrationSpec:
    images: Path | None = None
    annotations: Path | None = None
    count: int = 500
    held_out: int = 50
    seed: int = 0
    algorithm: str = "entropy"
    cache: Path | None = None  # an explicit TensorRT cache: reused as is, images optional


def fp32_detector(backend: OnnxRuntimeBackend, threshold: float = TRACK_THRESH) -> Detector:
    """Without annotations, pre_hm shows what the FP32 model itself detects on the image (as a first frame)."""
    h, w = backend.meta.input_size
    decoder = Decoder.for_meta(backend.meta, threshold=threshold)

    def detect(tensors: dict[str, np.ndarray], frame: np.ndarray) -> np.ndarray:
        feed = {name: tensors.get(name, tensors["image"])[None] for name in backend.meta.inputs}
        if "pre_img" in feed:
            feed["pre_img"] = feed["image"]
        outputs = backend(feed)
        geometry = FrameGeometry.build(frame.shape[1], frame.shape[0], h, w)
        return decoder({k: v[0] for k, v in outputs.items()}, geometry).boxes

    return detect


@dataclass
class Prepared:
    inputs: CalibrationInputs
    calibration: list[Path]
    held_out: list[Path]
    checksum: str
    notes: list[str]
    fp32: OnnxRuntimeBackend

    def accuracy(self, candidate: Backend) -> AccuracyReport:
        """``candidate`` (INT8) against the FP32 model on the held-out images."""
        return measure_accuracy(self.fp32, candidate, self.inputs, self.held_out)


def prepare(spec: CalibrationSpec, onnx_path: Path, batch: int) -> Prepared:
    if spec.images is None:
        raise CtrtError("INT8 needs calibration images: --calib-images DIR (COCO val2017 or any photos)")
    meta = read_meta(onnx_path)
    selection = select_images(spec.images, spec.count, spec.held_out, spec.seed, minimum=batch)
    notes = [f"calibration: {len(selection.calibration)} images drawn from {spec.images} (seed {spec.seed}), "
             f"{len(selection.held_out)} held out for the accuracy report"
             + (f", {len(selection.unreadable)} unreadable skipped" if selection.unreadable else "")]
    if spec.held_out and not selection.held_out:
        notes.append(f"warning: all {len(selection.calibration)} usable images went to calibration, none is left "
                     "for the accuracy report, which is skipped; a smaller --calib-count leaves some")
    if len(selection.calibration) < RECOMMENDED:
        notes.append(f"warning: only {len(selection.calibration)} calibration images; {RECOMMENDED}+ are recommended")
    fp32 = OnnxRuntimeBackend(onnx_path, "cpu")
    boxes = load_coco_boxes(spec.annotations) if spec.annotations else None
    detector = None if boxes is not None or "pre_hm" not in meta.inputs else fp32_detector(fp32)
    inputs = CalibrationInputs(meta.inputs, meta.input_size, meta.mean, meta.std, boxes, detector, spec.seed)
    checksum = selection.checksum + (sha256_file(spec.annotations)[:16] if spec.annotations else "")
    return Prepared(inputs, selection.calibration, selection.held_out, checksum, notes, fp32)


def quantize_model(onnx_path: Path, output: Path, spec: CalibrationSpec, method: str, target: str,
                   progress: Progress) -> tuple[ArtifactMeta, AccuracyReport | None, list[str]]:
    """FP32 ONNX -> Q/DQ INT8 ONNX at ``output``, its sidecar and its accuracy report (None where calibration took
    every image)."""
    from .quantize import TARGETS, quantize_onnx

    if target not in TARGETS:
        raise CtrtError(f"--target {target!r}: choose {' or '.join(TARGETS)}")

    meta = read_meta(onnx_path)
    if meta.batch != 1:
        raise CtrtError("quantize a batch-1 export (ctrt export without --batch/--dynamic-batch)")
    if meta.precision != "fp32":
        raise CtrtError(f"{onnx_path} is an {meta.precision.upper()} model; quantize the FP32 export")
    prepared = prepare(spec, onnx_path, 1)
    for note in prepared.notes:
        progress(note, keep=True)
    if method != "minmax":
        progress(f"note: ONNX Runtime's {method} calibration keeps every image's activations in memory until the "
                 "end; lower --calib-count if memory runs out (minmax does not)", keep=True)
    done = {"n": 0}

    def batches() -> Any:
        for feed in prepared.inputs.batches(prepared.calibration, 1):
            done["n"] += 1
            progress(f"calibrating {done['n']}/{len(prepared.calibration)}")
            yield feed

    quantized_meta = replace(meta, precision="int8", quantization=QuantRecord(
        onnx_path.name, sha256_file(onnx_path), prepared.checksum, len(prepared.calibration), method, target))
    report: AccuracyReport | None = None
    reported = [report_path(output)] if prepared.held_out else []
    with atomic_outputs(output, sidecar_path(output), *reported) as (tmp, sidecar_tmp, *report_tmp):
        kept, rewrites = quantize_onnx(onnx_path, tmp, batches(), len(prepared.calibration), method, target)
        progress(f"rewrote {rewrites.split_convs} context-reading convs and {rewrites.separable_pools} 9x9 pools "
                 "for INT8 (exact up to FP32 rounding)", keep=True)
        import onnx

        quantized = onnx.load(str(tmp))
        embed_meta(quantized, quantized_meta)
        onnx.save(quantized, str(tmp))
        if report_tmp:
            progress("measuring accuracy on held-out images")
            # ONNX Runtime's fused INT8 kernels are what the cpu target runs. A TensorRT model is judged by its Q/DQ
            # arithmetic (fusions off: exact, like TensorRT's int32 accumulation), not by x86 kernels it never meets.
            int8 = OnnxRuntimeBackend(tmp, "cpu", meta=quantized_meta, optimize=target == "cpu")
            report = prepared.accuracy(int8)
            report_tmp[0].write_text(report.to_json())
        sidecar_tmp.write_text(quantized_meta.to_json())
    if report is None:
        report_path(output).unlink(missing_ok=True)  # an earlier model's report no longer describes this one
    return quantized_meta, report, kept


def default_quantized_path(model: Path) -> Path:
    """Where ``ctrt quantize`` writes unless told: export/<stem>_int8.onnx."""
    return Path("export") / f"{model.stem}_int8.onnx"


def report_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".accuracy.json")


def write_report(artifact: Path, report: AccuracyReport) -> None:
    write_text_atomic(report_path(artifact), report.to_json())


@dataclass
class TrtCalibration:
    calibrator: Any
    cache: Path
    reused: bool
    prepared: Prepared | None


def trt_calibration(spec: CalibrationSpec, onnx_path: Path, trt_version: str, cuda: CudaMemory,
                    progress: Progress) -> TrtCalibration:
    """The calibrator for an implicit-INT8 build and the cache it reads and writes (keyed, or explicit)."""
    from .trt_calibrator import ALGORITHMS, make_calibrator

    if spec.algorithm not in ALGORITHMS:
        raise CtrtError(f"--calib-algo {spec.algorithm!r}: choose {' or '.join(ALGORITHMS)}")
    meta = read_meta(onnx_path)
    batch = max(meta.batch, 1)
    if spec.cache is not None:
        if not spec.cache.is_file():
            raise CtrtError(f"calibration cache not found: {spec.cache}")
        progress(f"using calibration cache {spec.cache} as given (no images needed)", keep=True)
        prepared = prepare(spec, onnx_path, batch) if spec.images else None
        calibrator = make_calibrator(spec.algorithm, iter(()), batch, cuda, spec.cache, spec.cache, lambda n: None)
        return TrtCalibration(calibrator, spec.cache, True, prepared)
    prepared = prepare(spec, onnx_path, batch)
    for note in prepared.notes:
        progress(note, keep=True)
    h, w = meta.input_size
    record = CalibrationRecord(sha256_file(onnx_path), prepared.checksum, (batch, 3, h, w), trt_version,
                               spec.algorithm, len(prepared.calibration))
    cache = cache_path(record, CALIBRATION_DIR, onnx_path.stem)
    reused = cache.is_file()
    if reused:
        progress(f"reusing {cache}: same ONNX, images, shape, TensorRT and algorithm", keep=True)
    else:
        write_text_atomic(sidecar_path(cache), replace(meta, kind="calibration", calibration=record).to_json())
    total = len(prepared.calibration) // batch
    calibrator = make_calibrator(spec.algorithm, prepared.inputs.batches(prepared.calibration, batch), batch, cuda,
                                 cache, cache, lambda n: progress(f"calibrating batch {n}/{total}"))
    return TrtCalibration(calibrator, cache, reused, prepared)
