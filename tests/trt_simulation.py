"""SIMULATION of the TensorRT and CUDA (cuda-python) subset ctrt uses, for machines without a GPU.

Not TensorRT: the "engine" is the ONNX run by ONNX Runtime. What it does reproduce are the contracts ctrt's code
must honour, so that a bug in our buffer handling fails a test:
- the API surface of the simulated release: ctrt sees exactly that release's names (ctrt/assets/trt_api.json, from
  its bindings wheel), so BuilderFlag.FP16 on 11 or IProgressMonitor on 8.6 raise AttributeError as TensorRT does;
  EXPLICIT_BATCH is required before 10;
- the ONNX parser reports errors through ``num_errors`` / ``get_error(i).desc()/.node()``;
- an engine refuses deserialisation under another TensorRT version (returns None, as TensorRT does);
- every I/O tensor address must be set before ``execute_async_v3``, and must point at a device allocation of exactly
  the tensor's size (for a dynamic-batch engine: at least the size at the batch set with ``set_input_shape``, which
  must be set for every input and lie within the optimization profile); copies may not run past an allocation;
- everything on a stream (copies, execution) runs only at ``cudaStreamSynchronize``, in order, reading host memory
  at that moment: host outputs are valid only after synchronisation, as on a GPU.
"""

from __future__ import annotations

import ctypes
import enum
import json
import os
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from ctrt import trt_api, trt_rules


class SimulationError(AssertionError):
    """A contract violation that real TensorRT/CUDA would punish (crash, garbage or an error code)."""


# ----------------------------------------------------------------------------------------------------------- CUDA
class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


@dataclass
class DeviceProps:
    name: bytes = b"Orin (simulated)"
    major: int = 8
    minor: int = 7


@dataclass
class CudaState:
    device: dict[int, bytearray] = field(default_factory=dict)
    host: dict[int, Any] = field(default_factory=dict)
    queues: dict[int, list] = field(default_factory=dict)
    next_ptr: int = 0x7F00_0000_0000
    bytes_to_device: int = 0
    bytes_to_host: int = 0
    graphs_captured: int = 0
    graph_launches: int = 0
    props: DeviceProps = field(default_factory=DeviceProps)


def make_cuda_runtime() -> types.ModuleType:
    rt = types.ModuleType("cuda.bindings.runtime")
    state = CudaState()
    ok = cudaError_t.cudaSuccess
    rt.cudaError_t, rt.cudaMemcpyKind, rt.state = cudaError_t, cudaMemcpyKind, state
    rt.cudaStreamCaptureMode = cudaStreamCaptureMode
    pending: dict[int, list] = {}

    def begin_capture(stream, mode):
        # Work enqueued before the capture stays pending and runs as usual; new work is recorded instead.
        if stream in pending:
            raise SimulationError("stream is already capturing")
        pending[stream], state.queues[stream] = state.queues[stream], []
        return (ok,)

    def end_capture(stream):
        graph, state.queues[stream] = state.queues[stream], pending.pop(stream)
        state.graphs_captured += 1
        return ok, graph

    def launch(graph, stream):
        state.queues[stream].extend(graph)
        state.graph_launches += 1
        return (ok,)

    rt.cudaStreamBeginCapture = begin_capture
    rt.cudaStreamEndCapture = end_capture
    rt.cudaGraphInstantiate = lambda graph, flags: (ok, tuple(graph))
    rt.cudaGraphLaunch = launch

    def malloc(nbytes):
        ptr = state.next_ptr
        state.next_ptr += (nbytes + 0xFFFF) & ~0xFFFF
        state.device[ptr] = bytearray(nbytes)
        return ok, ptr

    def malloc_host(nbytes):
        buffer = (ctypes.c_byte * nbytes)()
        state.host[ctypes.addressof(buffer)] = buffer
        return ok, ctypes.addressof(buffer)

    def memcpy_async(dst, src, count, kind, stream):
        if stream not in state.queues:
            raise SimulationError(f"copy on unknown stream {stream}")
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            if dst not in state.device or len(state.device[dst]) < count:
                raise SimulationError(f"H2D of {count} bytes into a device buffer smaller than that")

            def op():
                state.device[dst][:count] = ctypes.string_at(src, count)  # host memory is read when the copy runs
                state.bytes_to_device += count
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            if src not in state.device or len(state.device[src]) < count:
                raise SimulationError(f"D2H of {count} bytes from a device buffer smaller than that")

            def op():
                ctypes.memmove(dst, bytes(state.device[src][:count]), count)
                state.bytes_to_host += count
        else:
            raise SimulationError(f"unsupported copy kind {kind}")
        state.queues[stream].append(op)
        return (ok,)

    def stream_create():
        handle = 0x5000 + len(state.queues) + 1
        state.queues[handle] = []
        return ok, handle

    def synchronize(stream):
        if stream in pending:
            raise SimulationError("cudaStreamSynchronize during capture is illegal")
        for op in state.queues[stream]:
            op()
        state.queues[stream].clear()
        return (ok,)

    def event_create():
        return ok, {"time": None}

    def event_record(event, stream):
        def op():
            event["time"] = time.perf_counter()
        state.queues[stream].append(op)
        return (ok,)

    def event_elapsed(start, end):
        if start["time"] is None or end["time"] is None:
            return cudaError_t.cudaErrorInvalidValue, 0.0  # cudaErrorNotReady on a GPU: not synchronised yet
        return ok, (end["time"] - start["time"]) * 1e3

    rt.cudaEventCreate = event_create
    rt.cudaEventRecord = event_record
    rt.cudaEventElapsedTime = event_elapsed
    rt.cudaMalloc = malloc
    rt.cudaMallocHost = malloc_host
    rt.cudaFree = lambda ptr: (state.device.pop(ptr, None), (ok,))[1]
    rt.cudaFreeHost = lambda ptr: (state.host.pop(ptr, None), (ok,))[1]
    rt.cudaMemcpyAsync = memcpy_async
    rt.cudaStreamCreate = stream_create
    rt.cudaStreamDestroy = lambda stream: (state.queues.pop(stream, None), (ok,))[1]
    rt.cudaStreamSynchronize = synchronize
    rt.cudaGetDeviceCount = lambda: (ok, 1)
    rt.cudaGetDeviceProperties = lambda device: (ok, state.props)
    rt.cudaDriverGetVersion = lambda: (ok, 12060)
    rt.cudaRuntimeGetVersion = lambda: (ok, 12060)
    return rt


# ------------------------------------------------------------------------------------------------------- TensorRT
# What ctrt's code reaches on the simulated module and its objects is checked against the simulated release's names
# (ctrt/assets/trt_api.json, from that release's bindings wheel): a name the release lacks raises AttributeError as
# TensorRT would, a name it has that the simulation lacks raises SimulationError, and every name reached is recorded
# in ``tensorrt._used``. Only accesses from ctrt's own files are checked; the simulation and tests read freely.
CTRT_SOURCE = str(Path(trt_rules.__file__).parent) + os.sep
SIMULATES: dict[type, str] = {}  # simulated class -> the TensorRT class it stands for


def simulates(trt_name: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        SIMULATES[cls] = trt_name
        return cls
    return register


def _from_ctrt(name: str) -> bool:
    return not name.startswith("_") and sys._getframe(2).f_code.co_filename.startswith(CTRT_SOURCE)


def _check(owner: type, name: str, instance: object | None) -> str | None:
    """ctrt reaching ``name``: allowed if ctrt's own subclass defines it, else it must be in the release."""
    simulated = next(c for c in owner.__mro__ if c in SIMULATES)
    own = owner.__mro__[: owner.__mro__.index(simulated)]
    if any(name in c.__dict__ for c in own) or (own and instance is not None and name in vars(instance)):
        return None
    trt = sys.modules["tensorrt"]
    trt_name = SIMULATES[simulated]
    if name not in trt_api.members(trt._release, trt_name):
        raise _lacks(trt_name, name)
    trt._used.add(f"{trt_name}.{name}")
    return trt_name


def _lacks(trt_name: str, name: str) -> AttributeError:
    return AttributeError(f"'tensorrt.{trt_name}' has no attribute '{name}' in TensorRT "
                          f"{sys.modules['tensorrt'].__version__}")


def _get(lookup: Callable[[], Any], trt_name: str | None, name: str) -> Any:
    try:
        return lookup()
    except AttributeError:
        if trt_name is None:
            raise
        raise SimulationError(f"tensorrt.{trt_name}.{name} exists in the simulated release but is not simulated") \
            from None


class TrtClass(type):
    """Class-level access (``trt.Logger.WARNING``) checked like instance access."""

    def __getattribute__(cls, name: str) -> Any:
        trt_name = _check(cls, name, None) if _from_ctrt(name) else None
        return _get(lambda: type.__getattribute__(cls, name), trt_name, name)


class TrtObject(metaclass=TrtClass):
    def __getattribute__(self, name: str) -> Any:
        trt_name = _check(type(self), name, self) if _from_ctrt(name) else None
        return _get(lambda: object.__getattribute__(self, name), trt_name, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if _from_ctrt(name) and type(self) in SIMULATES:  # ctrt's subclasses may hold what they like
            _check(type(self), name, self)
        object.__setattr__(self, name, value)


class TrtEnumType(enum.EnumMeta):
    def __getattribute__(cls, name: str) -> Any:
        trt_name = _check(cls, name, None) if _from_ctrt(name) else None
        return _get(lambda: enum.EnumMeta.__getattribute__(cls, name), trt_name, name)

    def __getattr__(cls, name: str) -> Any:  # EnumMeta's would find a member the release lacks after all
        raise _lacks(SIMULATES[cls], name)


class TensorRTModule(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        if _from_ctrt(name):
            if name not in trt_api.members(object.__getattribute__(self, "_release"), ""):
                raise AttributeError(f"module 'tensorrt' has no attribute '{name}' in TensorRT {self.__version__}")
            object.__getattribute__(self, "_used").add(name)
            return _get(lambda: object.__getattribute__(self, name), "", name)
        return object.__getattribute__(self, name)


@simulates("DataType")
class DataType(enum.Enum, metaclass=TrtEnumType):
    FLOAT = "float32"
    HALF = "float16"
    UINT8 = "uint8"


ORT_TYPES = {"tensor(float)": DataType.FLOAT, "tensor(float16)": DataType.HALF, "tensor(uint8)": DataType.UINT8}


@simulates("TensorIOMode")
class TensorIOMode(enum.Enum, metaclass=TrtEnumType):
    INPUT = 1
    OUTPUT = 2


@simulates("DeviceType")
class DeviceType(enum.Enum, metaclass=TrtEnumType):
    GPU = 0
    DLA = 1


@simulates("MemoryPoolType")
class MemoryPoolType(enum.Enum, metaclass=TrtEnumType):
    WORKSPACE = 0


@simulates("NetworkDefinitionCreationFlag")
class NetworkDefinitionCreationFlag(enum.IntEnum, metaclass=TrtEnumType):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


@simulates("BuilderFlag")
class BuilderFlag(enum.Enum, metaclass=TrtEnumType):
    FP16 = 0
    INT8 = 1
    GPU_FALLBACK = 2
    OBEY_PRECISION_CONSTRAINTS = 3


@simulates("Logger")
class Logger(TrtObject):
    VERBOSE, INFO, WARNING, ERROR = range(4)

    def __init__(self, min_severity: int = 2) -> None:
        self.min_severity = min_severity


@simulates("ILayer")
@dataclass
class Layer(TrtObject):
    name: str
    num_outputs: int
    precision: DataType = DataType.FLOAT
    precision_set: bool = False
    output_types: dict[int, DataType] = field(default_factory=dict)

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "precision" and "precision" in self.__dict__:
            object.__setattr__(self, "precision_set", True)
        super().__setattr__(key, value)

    def set_output_type(self, index: int, dtype: DataType) -> None:
        if not 0 <= index < self.num_outputs:
            raise SimulationError(f"layer {self.name} has no output {index}")
        self.output_types[index] = dtype


@simulates("Dims")
class Dims(tuple, metaclass=TrtClass):
    """TensorRT's Dims behaves like a tuple and is built from a list."""

    def __new__(cls, shape: Any = ()) -> Dims:
        return super().__new__(cls, (int(d) for d in shape))


@simulates("ITensor")
@dataclass
class Tensor(TrtObject):
    name: str
    shape: Dims


@simulates("IOptimizationProfile")
class OptimizationProfile(TrtObject):
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[Dims, Dims, Dims]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
        low, mid, high = Dims(min), Dims(opt), Dims(max)
        if not all(a <= b <= c for a, b, c in zip(low, mid, high)):
            raise SimulationError(f"profile for {name}: need min <= opt <= max, got {low} {mid} {high}")
        self.shapes[name] = (low, mid, high)


@simulates("INetworkDefinition")
class Network(TrtObject):
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.layers: list[Layer] = []
        self.inputs: list[Tensor] = []
        self.onnx_bytes = b""

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, index: int) -> Tensor:
        return self.inputs[index]

    def get_layer(self, index: int) -> Layer:
        return self.layers[index]


@simulates("ParserError")
@dataclass
class ParserError(TrtObject):
    message: str
    node_index: int

    def desc(self) -> str:
        return self.message

    def node(self) -> int:
        return self.node_index


@simulates("IHostMemory")
class HostMemory(bytes, metaclass=TrtClass):
    """IHostMemory supports the buffer protocol; ``bytes`` does too."""

    @property
    def nbytes(self) -> int:
        return len(self)


@simulates("ITimingCache")
class TimingCache(TrtObject):
    def __init__(self, data: bytes) -> None:
        self.entries = json.loads(data) if data else {"builds": 0}

    def serialize(self) -> HostMemory:
        return HostMemory(json.dumps(self.entries).encode())


@simulates("IBuilderConfig")
class BuilderConfig(TrtObject):
    def __init__(self) -> None:
        self.flags: set[Any] = set()
        self.pools: dict[Any, int] = {}
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        self.cache: TimingCache | None = None
        self.progress_monitor = None
        self.profiles: list[OptimizationProfile] = []
        self.int8_calibrator = None  # ctrt reaches it only where the release has it (removed in TensorRT 11)

    def add_optimization_profile(self, profile: OptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        if not isinstance(size, int) or size <= 0:
            raise SimulationError("memory pool size must be a positive int")
        self.pools[pool] = size

    def set_flag(self, flag: Any) -> None:
        self.flags.add(flag)

    def get_flag(self, flag: Any) -> bool:
        return flag in self.flags

    def create_timing_cache(self, data: bytes) -> TimingCache:
        return TimingCache(bytes(data))

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> TimingCache:
        if self.cache is None:
            raise SimulationError("get_timing_cache without set_timing_cache")
        return self.cache


@simulates("OnnxParser")
class OnnxParser(TrtObject):
    def __init__(self, network: Network, logger: Logger) -> None:
        self.network = network
        self.errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> ParserError:
        return self.errors[index]

    def parse_from_file(self, path: str) -> bool:
        trt = sys.modules["tensorrt"]
        if trt.MAJOR < 10 and not self.network.flags & (1 << NetworkDefinitionCreationFlag.EXPLICIT_BATCH):
            self.errors.append(ParserError("The ONNX parser only supports networks with an explicit batch dimension", 0))
            return False
        try:
            model = onnx.load(path)
        except Exception as exc:
            self.errors.append(ParserError(f"failed to parse ONNX: {str(exc).splitlines()[0]}", -1))
            return False
        for index, node in enumerate(model.graph.node):
            if not onnx.defs.has(node.op_type):
                self.errors.append(ParserError(f"No importer registered for op: {node.op_type}", index))
        # What the real parser of this version refuses beyond that (ctrt/trt_rules.py, read from onnx-tensorrt)
        names = {node.name or f"#{i}": i for i, node in enumerate(model.graph.node)}
        for refusal in trt_rules.check(model, [trt_rules.trt_line(trt.__version__)]):
            self.errors.append(ParserError(f"{refusal.op}: {refusal.reason}", names.get(refusal.node, -1)))
        if self.errors:
            return False
        self.network.layers = [Layer(node.name or f"node_{i}", len(node.output)) for i, node in enumerate(model.graph.node)]
        initializers = {init.name for init in model.graph.initializer}
        self.network.inputs = [
            Tensor(v.name, Dims(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim))
            for v in model.graph.input if v.name not in initializers]
        self.network.onnx_bytes = model.SerializeToString()
        return True


@simulates("Builder")
class Builder(TrtObject):
    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.num_DLA_cores = sys.modules["tensorrt"]._dla_cores

    def create_network(self, flags: int = 0) -> Network:
        return Network(flags)

    def create_builder_config(self) -> BuilderConfig:
        return BuilderConfig()

    def create_optimization_profile(self) -> OptimizationProfile:
        return OptimizationProfile()

    def build_serialized_network(self, network: Network, config: BuilderConfig) -> HostMemory | None:
        trt = sys.modules["tensorrt"]
        if not network.onnx_bytes:
            return None
        pinned = [layer.name for layer in network.layers if layer.precision_set]
        if pinned and trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS not in config.flags:
            raise SimulationError("layer precisions set without OBEY_PRECISION_CONSTRAINTS are only hints")
        if config.default_device_type == DeviceType.DLA and not 0 <= config.DLA_core < self.num_DLA_cores:
            return None
        dynamic = [t.name for t in network.inputs if min(t.shape) < 0]
        profile = config.profiles[0].shapes if config.profiles else {}
        if any(name not in profile for name in dynamic):
            return None  # TensorRT: "Network has dynamic or shape inputs, but no optimization profile has been defined"
        if config.cache is not None:
            config.cache.entries["builds"] += 1
        int8 = getattr(trt.BuilderFlag, "INT8", None) in config.flags
        calibration = b""
        if int8 and config.int8_calibrator is not None:
            calibration = calibrate(config.int8_calibrator, network, trt.__version__)
        if config.progress_monitor is not None:
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                if not monitor.step_complete("Building engine", step):
                    return None
            monitor.phase_finish("Building engine")
        header = {"version": trt.__version__, "fp16": getattr(trt.BuilderFlag, "FP16", None) in config.flags,
                  "int8": int8, "calibration": calibration.decode(),
                  "fp32_layers": pinned, "dla_core": config.DLA_core, "flags": network.flags,
                  "workspace": config.pools.get(MemoryPoolType.WORKSPACE),
                  "profile": {name: [list(d) for d in dims] for name, dims in profile.items()}}
        blob = json.dumps(header).encode()
        return HostMemory(len(blob).to_bytes(4, "little") + blob + network.onnx_bytes)


@simulates("ICudaEngine")
class Engine(TrtObject):
    device_memory_size = device_memory_size_v2 = 0  # ONNX Runtime's activation memory is not visible here

    def __init__(self, header: dict, onnx_bytes: bytes) -> None:
        self.header = header
        self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])

        def dims(shape: list) -> Dims:  # a named (dynamic) dimension is -1, as TensorRT reports it
            return Dims(d if isinstance(d, int) else -1 for d in shape)

        self.io = [(i.name, TensorIOMode.INPUT, dims(i.shape)) for i in self.session.get_inputs()]
        self.io += [(o.name, TensorIOMode.OUTPUT, dims(o.shape)) for o in self.session.get_outputs()]
        self.profile = {name: tuple(Dims(d) for d in shapes) for name, shapes in header.get("profile", {}).items()}
        self.types = {v.name: ORT_TYPES[v.type] for v in self.session.get_inputs() + self.session.get_outputs()}

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, index: int) -> str:
        return self.io[index][0]

    def _entry(self, name: str) -> tuple:
        return next(entry for entry in self.io if entry[0] == name)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self._entry(name)[1]

    def get_tensor_shape(self, name: str) -> tuple:
        return self._entry(name)[2]

    def get_tensor_dtype(self, name: str) -> DataType:
        return self.types[name]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> tuple[Dims, Dims, Dims]:
        if profile_index != 0 or name not in self.profile:
            raise SimulationError(f"no optimization profile {profile_index} for {name}")
        return self.profile[name]

    def create_execution_context(self) -> ExecutionContext:
        return ExecutionContext(self)


@simulates("IExecutionContext")
class ExecutionContext(TrtObject):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.input_shapes: dict[str, Dims] = {}
        self.executions = 0

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self.engine._entry(name)
        self.addresses[name] = int(memory)
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        low, _, high = self.engine.get_tensor_profile_shape(name, 0)
        shape = Dims(shape)
        if len(shape) != len(low) or not all(a <= d <= b for a, d, b in zip(low, shape, high)):
            return False  # TensorRT reports an out-of-profile shape by returning False
        self.input_shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        """Resolved: a dynamic batch is the one set on the inputs."""
        shape = self.engine.get_tensor_shape(name)
        if min(shape) >= 0:
            return shape
        batches = {s[0] for s in self.input_shapes.values()}
        if len(batches) != 1:
            raise SimulationError(f"shape of {name} asked before every input's batch was set consistently")
        return Dims((batches.pop(), *shape[1:]))

    def _entry_size(self, name: str) -> int:
        return self._bytes(name, self.get_tensor_shape(name))

    def _bytes(self, name: str, shape: Dims) -> int:
        return int(np.prod(shape)) * np.dtype(self.engine.types[name].value).itemsize

    def execute_async_v3(self, stream_handle: int) -> bool:
        rt = sys.modules["cuda.bindings.runtime"]
        state = rt.state
        if stream_handle not in state.queues:
            raise SimulationError(f"execute_async_v3 on unknown stream {stream_handle}")
        for name, mode, shape in self.engine.io:
            if mode == TensorIOMode.INPUT and min(shape) < 0 and name not in self.input_shapes:
                raise SimulationError(f"input shape of dynamic {name} not set before execute_async_v3")
        for name, _, _ in self.engine.io:
            address = self.addresses.get(name)
            if address is None:
                raise SimulationError(f"tensor address of {name} not set before execute_async_v3")
            exact = min(self.engine.get_tensor_shape(name)) >= 0
            size = len(state.device.get(address, b""))
            if address not in state.device or (size != self._entry_size(name) if exact else size < self._entry_size(name)):
                raise SimulationError(f"address of {name} is not a device buffer of {self._entry_size(name)} bytes")
        snapshot = dict(self.addresses)
        shapes = {name: self.get_tensor_shape(name) for name, _, _ in self.engine.io}

        def run() -> None:
            feed = {}
            for name, mode, _ in self.engine.io:
                if mode == TensorIOMode.INPUT:
                    data = bytes(state.device[snapshot[name]][: self._bytes(name, shapes[name])])
                    feed[name] = np.frombuffer(data, self.engine.types[name].value).reshape(shapes[name])
            outputs = self.engine.session.run(None, feed)
            for (name, mode, _), value in zip([e for e in self.engine.io if e[1] == TensorIOMode.OUTPUT], outputs):
                data = np.ascontiguousarray(value, np.float32).tobytes()
                state.device[snapshot[name]][: len(data)] = data
            self.executions += 1

        state.queues[stream_handle].append(run)
        return True


@simulates("Runtime")
class Runtime(TrtObject):
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
        data = bytes(data)
        size = int.from_bytes(data[:4], "little")
        try:
            header = json.loads(data[4 : 4 + size])
        except ValueError:
            return None
        if header["version"] != sys.modules["tensorrt"].__version__:
            return None  # TensorRT logs "serialization version mismatch" and returns None
        return Engine(header, data[4 + size :])


@simulates("CalibrationAlgoType")
class CalibrationAlgoType(enum.Enum, metaclass=TrtEnumType):
    ENTROPY_CALIBRATION_2 = 2
    MINMAX_CALIBRATION = 3


@simulates("IInt8Calibrator")
class IInt8Calibrator(TrtObject):
    """TensorRT drives it: read_calibration_cache; if None, get_batch until None; then write_calibration_cache."""

    def __init__(self) -> None:
        self._initialised = True


def calibrate(calibrator: IInt8Calibrator, network: Network, version: str) -> bytes:
    if not getattr(calibrator, "_initialised", False):
        raise SimulationError("calibrator subclass did not call IInt8Calibrator.__init__")
    cached = calibrator.read_calibration_cache()
    if cached:
        return bytes(cached)
    session = ort.InferenceSession(network.onnx_bytes, providers=["CPUExecutionProvider"])
    inputs = [(i.name, tuple(i.shape)) for i in session.get_inputs()]
    batch = calibrator.get_batch_size()
    state = sys.modules["cuda.bindings.runtime"].state
    ranges: dict[str, float] = {}
    batches = 0
    while True:
        pointers = calibrator.get_batch([name for name, _ in inputs])
        if pointers is None:
            break
        if len(pointers) != len(inputs):
            raise SimulationError("get_batch must return one device pointer per requested input")
        for (name, shape), pointer in zip(inputs, pointers):
            expected = int(np.prod(shape)) * 4
            if shape[0] != batch or pointer not in state.device or len(state.device[pointer]) != expected:
                raise SimulationError(f"batch for {name} is not a device buffer of {expected} bytes")
            values = np.frombuffer(bytes(state.device[pointer]), np.float32)
            ranges[name] = max(ranges.get(name, 0.0), float(np.abs(values).max()))
        batches += 1
    if not batches:
        raise SimulationError("calibration got no batches")
    algo = calibrator.get_algorithm().name
    lines = [f"TRT-{version.replace('.', '')}-{algo}"] + [f"{k}: {np.float32(v / 127).view(np.uint32):08x}"
                                                          for k, v in ranges.items()]
    cache = "\n".join(lines).encode()
    calibrator.write_calibration_cache(cache)
    return cache


@simulates("IProgressMonitor")
class IProgressMonitor(TrtObject):
    def __init__(self) -> None:
        pass


SIMULATED_NAMES = {
    "Logger": Logger, "Builder": Builder, "OnnxParser": OnnxParser, "Runtime": Runtime, "DataType": DataType,
    "TensorIOMode": TensorIOMode, "DeviceType": DeviceType, "MemoryPoolType": MemoryPoolType, "BuilderFlag": BuilderFlag,
    "NetworkDefinitionCreationFlag": NetworkDefinitionCreationFlag, "float32": DataType.FLOAT, "float16": DataType.HALF,
    "nptype": lambda dtype: np.dtype(dtype.value).type, "Dims": Dims, "IProgressMonitor": IProgressMonitor,
    "IInt8Calibrator": IInt8Calibrator, "CalibrationAlgoType": CalibrationAlgoType,
}


def make_tensorrt(version: str = "10.3.0", dla_cores: int = 0) -> types.ModuleType:
    """The simulated module of one release: its top-level names are the release's, as far as ctrt can see."""
    release = trt_api.release_of(version)
    if release is None:
        raise SimulationError(f"no API names recorded for TensorRT {version}")
    trt = TensorRTModule("tensorrt")
    trt.__version__, trt.MAJOR, trt._release, trt._used = version, int(version.split(".")[0]), release, set()
    present = trt_api.members(release, "")
    for name, value in SIMULATED_NAMES.items():
        if name in present:
            setattr(trt, name, value)
    trt._dla_cores = dla_cores
    return trt


def install(monkeypatch, version: str = "10.3.0", dla_cores: int = 0) -> tuple[types.ModuleType, types.ModuleType]:
    """Put the simulated ``tensorrt`` and ``cuda.bindings.runtime`` in sys.modules for one test."""
    trt, runtime = make_tensorrt(version, dla_cores), make_cuda_runtime()
    cuda_pkg, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda_pkg.bindings, bindings.runtime = bindings, runtime
    for name, module in {"tensorrt": trt, "cuda": cuda_pkg, "cuda.bindings": bindings,
                         "cuda.bindings.runtime": runtime}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return trt, runtime
