"""TensorRT backend: name-based I/O, device buffers allocated once, page-locked host buffers, one stream.

The previous frame never crosses the bus twice: when the array fed as ``pre_img`` (``pre_frame`` for in-graph
pre-processing) is the one fed as ``image`` (``frame``) on the previous call, as ``TrackingPipeline`` does, the
previous call's device buffer is used and the two device buffers swap roles. Callers that pass the same array must
not have changed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
import numpy as np

from ...artifacts import ArtifactMeta, read_meta
from ..tensorrt_import import require_tensorrt
from ...errors import CtrtError
from ..cuda_memory import CudaMemory, open_cuda

# (current, previous) input pairs whose previous value is the current one of the call before.
PAIRS = (("image", "pre_img"), ("frame", "pre_frame"))


def check_compatible(meta: ArtifactMeta, path: Path, trt_version: str, gpu: str, capability: str) -> None:
    """Refuse an engine built elsewhere before TensorRT prints its own deserialisation error."""
    built = meta.engine
    if meta.kind != "engine" or built is None:
        raise CtrtError(f"{path} is described as a {meta.kind}, not a TensorRT engine")
    rebuild = f"rebuild it here: ctrt build {built.onnx}" + (" --fp16" if meta.precision == "fp16" else "")
    if built.tensorrt != trt_version:
        raise CtrtError(f"{path} was built with TensorRT {built.tensorrt}, this machine has {trt_version}; " + rebuild)
    if (built.gpu, built.compute_capability) != (gpu, capability):
        raise CtrtError(f"{path} was built for {built.gpu} (SM {built.compute_capability}), this GPU "
                        f"is {gpu} (SM {capability}); " + rebuild)


class TensorRTBackend:
    def __init__(self, path: Path, cuda: CudaMemory | None = None, verbose: bool = False,
                 cuda_graph: bool = False) -> None:
        if not path.is_file():
            raise CtrtError(f"engine not found: {path}")
        require_tensorrt()
        import tensorrt as trt

        self.meta = read_meta(path)
        self.cuda = cuda or open_cuda()
        gpu, capability = self.cuda.device()
        check_compatible(self.meta, path, str(trt.__version__), gpu, capability)
        logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise CtrtError(f"TensorRT could not load {path}; rebuild it with ctrt build")
        self.context = self.engine.create_execution_context()
        self.name = f"tensorrt {trt.__version__} ({gpu}, {self.meta.precision})"
        self.stream = self.cuda.create_stream()

        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.host: dict[str, np.ndarray] = {}
        self.device: dict[str, int] = {}
        # A dynamic-batch engine (one optimization profile, batch 1..max) gets buffers for its largest batch; each
        # call sets the batch it feeds and copies only that much.
        self.max_batch = 0
        shapes: dict[str, tuple[int, ...]] = {}
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            dims = self.engine.get_tensor_shape(name)
            shapes[name] = tuple(int(dims[i]) for i in range(len(dims)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if min(shapes[name][1:], default=0) < 0:
                raise CtrtError(f"{path} has a dynamic size in {name} {shapes[name]}; ctrt runs static or "
                                "dynamic-batch engines")
            if shapes[name][0] < 0 and is_input:
                self.max_batch = int(self.engine.get_tensor_profile_shape(name, 0)[2][0])
            (self.inputs if is_input else self.outputs).append(name)
        for name, shape in shapes.items():
            full = (self.max_batch, *shape[1:]) if shape[0] < 0 else shape
            self.host[name] = self.cuda.pinned(full, np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))))
            self.device[name] = self.cuda.alloc(self.host[name].nbytes)
        self.batch = self.host[self.inputs[0]].shape[0]  # rows of the last call
        # Two device slots for the current and previous image, swapped each call.
        self._pair = next(((cur, prev) for cur, prev in PAIRS if cur in self.inputs and prev in self.inputs), None)
        self._image_slots = [self.device[self._pair[0]], self.cuda.alloc(self.host[self._pair[0]].nbytes)] \
            if self._pair else []
        self._slot = 0
        self._previous_image: np.ndarray | None = None
        for name in self.outputs:
            self.context.set_tensor_address(name, self.device[name])
        # Our I/O buffers plus the engine's activation memory (device_memory_size_v2 from TensorRT 10).
        engine_bytes = getattr(self.engine, "device_memory_size_v2", 0) or getattr(self.engine, "device_memory_size", 0)
        second_slot = self.host[self._pair[0]].nbytes if self._pair else 0
        self.device_bytes = sum(buffer.nbytes for buffer in self.host.values()) + second_slot + int(engine_bytes)
        self.copies_to_device = 0  # bytes copied host -> device by the last call
        # CUDA graphs of execute_async_v3, one per tensor-address layout (the image slots alternate).
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple[int, ...], Any] = {}
        self._executed = False
        self._events = [self.cuda.event() for _ in range(4)]
        self.last_ms: dict[str, float] = {}  # device-side times of the last call (CUDA events)

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cuda.close()

    def _paired(self, name: str) -> bool:
        return self._pair is not None and name in self._pair

    def _execute(self, layout: tuple[int, ...]) -> None:
        """Enqueue the engine; with CUDA graphs, replay the graph captured for this address layout."""
        def enqueue() -> None:
            if not self.context.execute_async_v3(self.stream):
                raise CtrtError("TensorRT execution failed")

        # TensorRT allocates lazily on the first execution, which must not happen inside a capture.
        if not self.cuda_graph or not self._executed:
            enqueue()
            self._executed = True
            return
        if layout not in self._graphs:
            self._graphs[layout] = self.cuda.capture(self.stream, enqueue)
        self.cuda.launch(self._graphs[layout], self.stream)

    def run_on_device(self) -> None:
        """Execute on whatever inputs are on the device, with no copies (trtexec's --noDataTransfers)."""
        for name in self.inputs:
            if not self._paired(name):
                self.context.set_tensor_address(name, self.device[name])
        self._execute((self._slot,))
        self.cuda.synchronize(self.stream)

    def _upload(self, name: str, array: np.ndarray, address: int) -> None:
        staging = self.host[name][: self.batch]
        if array.shape != staging.shape:
            raise CtrtError(f"input {name} has shape {array.shape}, the engine expects {staging.shape}")
        np.copyto(staging, array)
        self.cuda.to_device(address, staging, self.stream)
        self.copies_to_device += staging.nbytes

    def _set_batch(self, feed: dict[str, np.ndarray]) -> None:
        """On a dynamic-batch engine, tell the context this call's batch (within the profile)."""
        if not self.max_batch:
            return
        batch = int(feed[self.inputs[0]].shape[0])
        if not 1 <= batch <= self.max_batch:
            raise CtrtError(f"batch {batch}: this engine was built for batches 1 to {self.max_batch} "
                            "(ctrt build --max-batch N)")
        if batch != self.batch:
            self._previous_image = None  # the resident previous image has the old batch's rows
        self.batch = batch
        for name in self.inputs:
            self.context.set_input_shape(name, (batch, *self.host[name].shape[1:]))

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._set_batch(feed)
        self.copies_to_device = 0
        start, uploaded, computed, done = self._events
        self.cuda.record(start, self.stream)
        if self._pair is not None:
            now, before = self._pair
            current, previous = self._image_slots[self._slot], self._image_slots[1 - self._slot]
            self._upload(now, feed[now], current)
            if feed[before] is not self._previous_image:
                self._upload(before, feed[before], previous)
            self.context.set_tensor_address(now, current)
            self.context.set_tensor_address(before, previous)
            self._previous_image = feed[now]
            self._slot = 1 - self._slot
        for name in self.inputs:
            if not self._paired(name):
                self._upload(name, feed[name], self.device[name])
                self.context.set_tensor_address(name, self.device[name])
        self.cuda.record(uploaded, self.stream)
        self._execute((self._slot,))
        self.cuda.record(computed, self.stream)
        for name in self.outputs:
            self.cuda.to_host(self.host[name][: self.batch], self.device[name], self.stream)
        self.cuda.record(done, self.stream)
        self.cuda.synchronize(self.stream)
        self.last_ms = {"h2d": self.cuda.elapsed_ms(start, uploaded), "compute": self.cuda.elapsed_ms(uploaded, computed),
                        "d2h": self.cuda.elapsed_ms(computed, done)}
        return {name: self.host[name][: self.batch] for name in self.outputs}
