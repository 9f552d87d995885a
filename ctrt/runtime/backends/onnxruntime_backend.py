"""ONNX Runtime backend: CUDA (or TensorRT) execution providers where installed, else CPU."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from ...artifacts import ArtifactMeta, read_meta
from ...errors import CtrtError

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def x86_without_vnni(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """x86 CPUs without VNNI multiply uint8 by int8 with VPMADDUBSW, whose 16-bit pair sums saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False  # unknown: no warning rather than a wrong one
    return not flags & {"avx512_vnni", "avx_vnni"}


class OnnxRuntimeBackend:
    last_ms = device_bytes = run_on_device = None  # capabilities of TensorRT only

    def __init__(self, path: Path, device: str = "auto", threads: int = 0, meta: ArtifactMeta | None = None,
                 optimize: bool = True) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise CtrtError(f"model not found: {path}")
        self.meta = meta or read_meta(path)
        available = ort.get_available_providers()
        if device == "auto":
            wanted = PROVIDERS["cuda"] if "CUDAExecutionProvider" in available else PROVIDERS["cpu"]
        elif device in PROVIDERS:
            wanted = PROVIDERS[device]
        else:
            raise CtrtError(f"device {device!r}: choose auto, cpu, cuda or tensorrt", option="device")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # provider fallbacks are reported below, in one line
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=[p for p in wanted if p in available])
        except Exception as exc:
            raise CtrtError(f"ONNX Runtime cannot load {path}: {str(exc).strip().splitlines()[0]}") from None
        active = self.session.get_providers()
        # get_available_providers() lists GPU providers on machines without a GPU; only the session knows.
        if device not in ("auto", "cpu") and active[0] != wanted[0]:
            raise CtrtError(f"device {device}: {wanted[0]} is not usable here (ONNX Runtime runs on {active[0]}); "
                            "use the device cpu or install onnxruntime-gpu with CUDA", option="device")
        self.provider = active[0]
        self.name = f"onnxruntime ({self.provider.replace('ExecutionProvider', '')})"
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._check_meta(path)

    def _check_meta(self, path: Path) -> None:
        """The metadata must describe this graph: a sidecar left from another export would feed wrong tensors."""
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        h, w = self.meta.input_size
        problems = []
        if set(inputs) != set(self.meta.inputs) or set(self.output_names) != set(self.meta.outputs):
            problems.append(f"inputs {sorted(self.meta.inputs)} / outputs {sorted(self.meta.outputs)}, the graph has "
                            f"{sorted(inputs)} / {sorted(self.output_names)}")
        image = inputs.get("image")
        if image is not None and list(image[2:]) != [h, w]:
            problems.append(f"input size {h}x{w}, the graph takes {image[2]}x{image[3]}")
        if problems:
            raise CtrtError(f"the metadata of {path} does not describe it ({'; '.join(problems)}): a sidecar "
                            f"{path.name}.json from another export? Delete it or re-export the model")

    @property
    def notes(self) -> list[str]:
        """A TensorRT-target INT8 model (8-bit weights) on ONNX Runtime's CPU kernels where they saturate."""
        quantization = self.meta.quantization
        if (self.provider != "CPUExecutionProvider" or self.meta.precision != "int8"
                or (quantization and quantization.target) != "tensorrt" or not x86_without_vnni()):
            return []
        return ["this INT8 model was quantized for TensorRT; on this CPU (no VNNI) ONNX Runtime's INT8 kernels "
                "saturate its 8-bit weights and lose accuracy. For ONNX Runtime on CPU use ctrt quantize ... "
                "--target cpu"]

    def __enter__(self) -> OnnxRuntimeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return dict(zip(self.output_names, self.session.run(self.output_names, feed)))
        except Exception as exc:  # onnxruntime's own error types (INVALID_ARGUMENT, FAIL, out of memory)
            raise CtrtError(f"ONNX Runtime failed to run the model: {str(exc).strip().splitlines()[0]}") from None
