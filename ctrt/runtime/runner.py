"""Opening a model file as a backend and running the tracker over a source into sinks."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CtrtError, Interrupted
from ..shutdown import signals_held
from .backends.base import Backend
from .detections import Detections
from .pipeline import TrackingPipeline
from .sinks import Sink, WindowSink
from .sources import FrameSource

CHECKPOINT_SUFFIXES = {".pth", ".pt"}
ENGINE_SUFFIXES = {".engine", ".plan", ".trt"}


def open_backend(model: str | Path, device: str = "auto", threads: int = 0, input_hw: tuple[int, int] = (512, 512),
                 allow_partial: bool = False, cuda_graph: bool = False, shm: bool = False, reconnects: int = 5,
                 notify: Callable[[str], None] = lambda _: None) -> Backend:
    """The backend for a model, chosen by its type: .onnx ONNX Runtime, .engine TensorRT, .pth PyTorch, and
    triton://HOST:PORT/MODEL (or http://...) a model served by Triton Inference Server."""
    from .backends.triton_backend import is_triton_url

    if isinstance(model, str) and is_triton_url(model):
        if cuda_graph or device != "auto" or threads:
            raise CtrtError("--device, --threads and --cuda-graph apply to local models; Triton's model config "
                            "decides how the server runs it")
        from .backends.triton_backend import TritonBackend

        return TritonBackend(model, shm, reconnects, notify)
    if shm:
        raise CtrtError("--shm applies to a model served by Triton (triton://HOST:PORT/MODEL)")
    path = Path(model)
    if not path.exists():
        raise CtrtError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if cuda_graph and suffix not in ENGINE_SUFFIXES:
        raise CtrtError("--cuda-graph applies to TensorRT engines only")
    if suffix == ".onnx":
        from .backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device, threads)
    if suffix in CHECKPOINT_SUFFIXES:
        from .backends.torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(path, input_hw, device, allow_partial)
    if suffix in ENGINE_SUFFIXES:
        from .backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, cuda_graph=cuda_graph)
    raise CtrtError(f"{path}: unsupported model type {suffix or '(none)'}; ctrt run takes .onnx, .engine or .pth")


def x86_without_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """x86 CPUs without VNNI multiply uint8 by int8 with VPMADDUBSW, whose 16-bit pair sums saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False  # unknown: no warning rather than a wrong one
    return not flags & {"avx512_vnni", "avx_vnni"}


def int8_kernel_warning(backend: Backend) -> str | None:
    """A TensorRT-target INT8 model (8-bit weights) on ONNX Runtime's CPU kernels where they saturate."""
    from .backends.onnxruntime_backend import OnnxRuntimeBackend

    if (not isinstance(backend, OnnxRuntimeBackend) or backend.provider != "CPUExecutionProvider"
            or backend.meta.precision != "int8" or (backend.meta.quantization and backend.meta.quantization.target) != "tensorrt"
            or not x86_without_vnni()):
        return None
    return ("this INT8 model was quantized for TensorRT; on this CPU (no VNNI) ONNX Runtime's INT8 kernels saturate "
            "its 8-bit weights and lose accuracy. For ONNX Runtime on CPU use ctrt quantize ... --target cpu")


@dataclass
class RunSummary:
    frames: int = 0
    tracks: int = 0
    seconds: float = 0.0
    skipped: int = 0
    reconnects: int = 0
    lost: bool = False
    interrupted: Interrupted | None = None  # the signal that stopped the run
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_stream(pipeline: TrackingPipeline, source: FrameSource, sinks: list[Sink], max_frames: int | None = None,
               on_frame: Callable[[int, Detections], None] | None = None) -> RunSummary:
    """Track every frame of ``source`` into ``sinks``. The end of the source, ``max_frames``, ESC in the window,
    Ctrl-C, SIGTERM/SIGHUP (see ``shutdown``) and errors all end it the same way: every sink closed complete.
    A source that gives no frame at all is an error, not an empty success."""
    summary = RunSummary()
    windows = [s for s in sinks if isinstance(s, WindowSink)]
    start = time.perf_counter()
    try:
        for index, frame in enumerate(source):
            tracks = pipeline(frame)
            with signals_held():  # a stop signal waits until every sink has this frame
                for sink in sinks:
                    sink.write(index, frame, tracks)
                summary.frames = index + 1
            if on_frame is not None:
                on_frame(index, tracks)
            if summary.frames == max_frames or any(w.stop_requested for w in windows):
                break
    except KeyboardInterrupt as exc:
        summary.interrupted = exc if isinstance(exc, Interrupted) else Interrupted()
    finally:
        for sink in sinks:
            sink.close()
        source.close()
    summary.seconds = time.perf_counter() - start
    summary.tracks = pipeline.tracker.next_id - 1
    summary.skipped, summary.lost, summary.reconnects = source.skipped, source.lost, source.reconnected
    if summary.frames == 0 and not summary.interrupted:
        raise CtrtError(source.nothing_read())
    if pipeline.times.count:
        summary.stage_ms = pipeline.times.mean()
    return summary
