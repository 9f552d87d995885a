"""The small piece of CUDA the TensorRT backend needs, over NVIDIA's cuda-python or, if that is absent, pycuda.

Device buffers, page-locked host arrays, one stream, async copies. TensorRT's own samples use cuda-python
(``cuda.bindings.runtime``; ``cuda.cudart`` on cuda-python 12); pycuda stays as the alternative a Jetson user may
already have.
"""

from __future__ import annotations

import ctypes
import importlib
from types import ModuleType
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..errors import CtrtError


class CudaMemory(Protocol):
    name: str

    def alloc(self, nbytes: int) -> int: ...

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray: ...

    def create_stream(self) -> int: ...

    def to_device(self, dst: int, src: np.ndarray, stream: int) -> None: ...

    def to_host(self, dst: np.ndarray, src: int, stream: int) -> None: ...

    def synchronize(self, stream: int) -> None: ...

    def event(self) -> Any: ...

    def record(self, event: Any, stream: int) -> None: ...

    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    def capture(self, stream: int, work: Callable[[], None]) -> Any: ...

    def launch(self, graph: Any, stream: int) -> None: ...

    def device(self) -> tuple[str, str]: ...

    def close(self) -> None: ...


def import_cuda_runtime() -> ModuleType | None:
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class CudaPythonMemory:
    """cuda-python's runtime API: every call returns ``(error, *values)``."""

    name = "cuda-python"

    def __init__(self, runtime: ModuleType) -> None:
        self.rt = runtime
        self._device: list[int] = []
        self._host: list[int] = []
        self._streams: list[Any] = []
        count = self._check(runtime.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count:
            raise CtrtError("no CUDA device found")

    def _check(self, result: Any, what: str) -> Any:
        error, *values = result if isinstance(result, tuple) else (result,)
        if error != self.rt.cudaError_t.cudaSuccess:
            raise CtrtError(f"CUDA {what} failed: {getattr(error, 'name', error)} (is the NVIDIA driver working?)")
        return values[0] if len(values) == 1 else values

    def alloc(self, nbytes: int) -> int:
        ptr = int(self._check(self.rt.cudaMalloc(nbytes), "cudaMalloc"))
        self._device.append(ptr)
        return ptr

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self._check(self.rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        self._host.append(ptr)
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(memoryview(raw).cast("B"), dtype=dtype).reshape(shape)

    def create_stream(self) -> int:
        stream = self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        self._streams.append(stream)
        return int(stream)

    def to_device(self, dst: int, src: np.ndarray, stream: int) -> None:
        self._check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync")

    def to_host(self, dst: np.ndarray, src: int, stream: int) -> None:
        self._check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes,
                                            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync")

    def synchronize(self, stream: int) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def event(self) -> Any:
        return self._check(self.rt.cudaEventCreate(), "cudaEventCreate")

    def record(self, event: Any, stream: int) -> None:
        self._check(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._check(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def capture(self, stream: int, work: Callable[[], None]) -> Any:
        """Record what ``work`` enqueues on ``stream`` as an executable CUDA graph."""
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
        work()
        graph = self._check(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        return self._check(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self, graph: Any, stream: int) -> None:
        self._check(self.rt.cudaGraphLaunch(graph, stream), "cudaGraphLaunch")

    def device(self) -> tuple[str, str]:
        props = self._check(self.rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace").rstrip("\0") if isinstance(props.name, bytes) else str(props.name)
        return name, f"{props.major}.{props.minor}"

    def close(self) -> None:
        for stream in self._streams:
            self.rt.cudaStreamDestroy(stream)
        for ptr in self._device:
            self.rt.cudaFree(ptr)
        for ptr in self._host:
            self.rt.cudaFreeHost(ptr)
        self._streams, self._device, self._host = [], [], []


class PyCudaMemory:
    """pycuda's driver API, with a context of its own that is pushed for the lifetime of this object."""

    name = "pycuda"

    def __init__(self, driver: ModuleType) -> None:
        self.cuda = driver
        driver.init()
        self.context = driver.Device(0).make_context()
        self._keep: list[Any] = []

    def alloc(self, nbytes: int) -> int:
        allocation = self.cuda.mem_alloc(nbytes)
        self._keep.append(allocation)
        return int(allocation)

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        array: np.ndarray = self.cuda.pagelocked_empty(shape, dtype)
        return array

    def create_stream(self) -> int:
        stream = self.cuda.Stream()
        self._keep.append(stream)
        return int(stream.handle)

    def _stream(self, handle: int) -> Any:
        return next(s for s in self._keep if isinstance(s, self.cuda.Stream) and int(s.handle) == handle)

    def to_device(self, dst: int, src: np.ndarray, stream: int) -> None:
        self.cuda.memcpy_htod_async(dst, src, self._stream(stream))

    def to_host(self, dst: np.ndarray, src: int, stream: int) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, self._stream(stream))

    def synchronize(self, stream: int) -> None:
        self._stream(stream).synchronize()

    def event(self) -> Any:
        return self.cuda.Event()

    def record(self, event: Any, stream: int) -> None:
        event.record(self._stream(stream))

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(end.time_since(start))

    def capture(self, stream: int, work: Callable[[], None]) -> Any:
        raise CtrtError("--cuda-graph needs cuda-python (pip install 'ctrt[trt]'); pycuda has no stream capture")

    def launch(self, graph: Any, stream: int) -> None:
        raise CtrtError("--cuda-graph needs cuda-python")

    def device(self) -> tuple[str, str]:
        dev = self.cuda.Device(0)
        major, minor = dev.compute_capability()
        return str(dev.name()), f"{major}.{minor}"

    def close(self) -> None:
        self._keep.clear()
        self.context.pop()


def open_cuda(prefer: str = "auto") -> CudaMemory:
    """cuda-python first (what TensorRT's samples use), then pycuda; ``prefer`` picks one explicitly."""
    if prefer in ("auto", "cuda-python"):
        runtime = import_cuda_runtime()
        if runtime is not None:
            return CudaPythonMemory(runtime)
        if prefer == "cuda-python":
            raise CtrtError("cuda-python is not installed: pip install 'ctrt[trt]' (or cuda-python)")
    if prefer in ("auto", "pycuda"):
        try:
            driver = importlib.import_module("pycuda.driver")
        except ImportError as exc:
            raise CtrtError(f"no CUDA Python bindings: install cuda-python (pip install 'ctrt[trt]') or pycuda "
                            f"({str(exc).splitlines()[0]})") from None
        return PyCudaMemory(driver)
    raise CtrtError(f"--cuda {prefer!r}: choose auto, cuda-python or pycuda")
