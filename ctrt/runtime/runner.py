"""Opening a model as a backend, chosen by its type, and what to tell its user about it."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path

from ..artifacts import ArtifactMeta
from ..errors import CtrtError
from .backends.base import Backend

CHECKPOINT_SUFFIXES = {".pth", ".pt"}
ENGINE_SUFFIXES = {".engine", ".plan", ".trt"}


def open_backend(model: str | Path, device: str = "auto", threads: int = 0, input_hw: tuple[int, int] = (512, 512),
                 allow_partial: bool = False, cuda_graph: bool = False, shm: bool = False, reconnects: int = 5,
                 notify: Callable[[str], None] = lambda _: None, transport: str | None = None) -> Backend:
    """The backend for a model, chosen by its type: .onnx ONNX Runtime, .engine TensorRT, .pth PyTorch, and
    triton://HOST:PORT/MODEL (or http://...) a model served by Triton Inference Server."""
    from .backends.triton_backend import is_triton_url

    if isinstance(model, str) and is_triton_url(model):
        if cuda_graph or device != "auto" or threads:
            raise CtrtError("device, threads and cuda_graph apply to local models; Triton's model config "
                            "decides how the server runs it", option="device")
        from .backends.triton_backend import TritonBackend

        return TritonBackend(model, shm, reconnects, notify, transport)
    if shm:
        raise CtrtError("shm applies to a model served by Triton (triton://HOST:PORT/MODEL)", option="shm")
    if transport is not None:
        raise CtrtError("transport applies to a model served by Triton (triton://HOST:PORT/MODEL)",
                        option="transport")
    path = Path(model)
    if not path.exists():
        raise CtrtError(f"model not found: {path}")
    suffix = path.suffix.lower()
    if cuda_graph and suffix not in ENGINE_SUFFIXES:
        raise CtrtError("cuda_graph applies to TensorRT engines only", option="cuda_graph")
    if suffix == ".onnx":
        from .backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device, threads)
    if suffix in CHECKPOINT_SUFFIXES:
        from .backends.torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(path, input_hw, device, allow_partial)
    if suffix in ENGINE_SUFFIXES:
        from .backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, cuda_graph=cuda_graph)
    raise CtrtError(f"{path}: unsupported model type {suffix or '(none)'}; ctrt takes .onnx, .engine (.plan, .trt) or .pth (.pt)")


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


def meta_notes(meta: ArtifactMeta) -> list[str]:
    """What an artifact's user should know before trusting its detections: weights that mean little or nothing
    outside ctrt's own scenes."""
    from ..model.config import BUILTINS

    if meta.random_weights:
        return ["this model has random (seeded) weights; its detections mean nothing"]
    if meta.builtin:
        return [BUILTINS.get(meta.builtin, meta.builtin)]
    return []


def model_notes(backend: Backend) -> list[str]:
    """``meta_notes``, and INT8 kernels that lose accuracy on this CPU."""
    warning = int8_kernel_warning(backend)
    return meta_notes(backend.meta) + ([warning] if warning else [])
