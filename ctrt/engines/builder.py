"""ONNX -> TensorRT engine for TensorRT 8.5 (JetPack 5.1) through 10.x and 11.x, with a metadata sidecar."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from ..artifacts import ArtifactMeta, EngineRecord, read_meta, sha256_file, sidecar_path
from ..outputs import atomic_output, atomic_outputs
from ..errors import CtrtError
from ..trt_rules import check_file, trt_line
from ..onnx_graph import fp32_layer_names, is_fp32_layer, is_quantized, onnx_is_half, tensor_specs
from ..progress import Progress, silent
from ..runtime.cuda_memory import CudaMemory, open_cuda
from ..runtime.tensorrt_import import require_tensorrt

if TYPE_CHECKING:  # calibration needs ONNX Runtime, which an FP16 build on a Jetson can do without
    import tensorrt as trt

    from ..calibration.accuracy import AccuracyReport
    from ..calibration.workflow import CalibrationSpec, TrtCalibration


@dataclass(frozen=True)
class BuildOptions:
    fp16: bool = False
    int8: bool = False
    workspace_gib: float | None = None  # None: TensorRT decides
    timing_cache: Path | None = None
    dla_core: int | None = None
    verbose: bool = False
    max_batch: int = 8  # the optimization profile's largest batch, for a dynamic-batch ONNX


def default_engine_path(onnx_path: Path, precision: str) -> Path:
    return Path("engines") / f"{onnx_path.stem}_{precision}.engine"


def _parse(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: Path) -> None:
    import tensorrt as trt

    # Our rules first: on a Jetson the parser's own message for a refused node is terse; this one names the rule.
    line = trt_line(trt.__version__)
    refused = check_file(onnx_path, [line])
    if refused:
        raise CtrtError(f"TensorRT {trt.__version__}'s ONNX parser would refuse {onnx_path}: {refused[0].text()}"
                        + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
                        + "; export it again with this ctrt")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        details = "; ".join(f"node {e.node()}: {e.desc()}" for e in errors) or "no details"
        raise CtrtError(f"TensorRT's ONNX parser rejected {onnx_path} ({len(errors)} errors): {details}")


def _progress_monitor(report: Progress) -> Any:
    """TensorRT >= 10 reports build phases through IProgressMonitor; older versions build silently."""
    import tensorrt as trt

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.phases: dict[str, tuple[int, str]] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.phases[phase_name] = (num_steps, phase_name)
            report(phase_name)

        def step_complete(self, phase_name: str, step: int) -> bool:
            steps = self.phases.get(phase_name, (0, phase_name))[0]
            report(f"{phase_name} {step + 1}/{steps}")
            return True

        def phase_finish(self, phase_name: str) -> None:
            self.phases.pop(phase_name, None)

    return Monitor()


def _add_batch_profile(builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig,
                       max_batch: int) -> bool:
    """A dynamic-batch ONNX (``ctrt export --dynamic-batch``) gets one optimization profile, batch 1 to
    ``max_batch`` (tuned for the largest): one engine serves any number of streams up to it."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if not any(tensor.shape[0] < 0 for tensor in inputs):
        return False
    import tensorrt as trt

    profile = builder.create_optimization_profile()
    for tensor in inputs:
        rest = [int(tensor.shape[i]) for i in range(1, len(tensor.shape))]
        largest = trt.Dims([max_batch, *rest])
        profile.set_shape(tensor.name, trt.Dims([1, *rest]), largest, largest)
    config.add_optimization_profile(profile)
    return True


@dataclass
class BuildResult:
    meta: ArtifactMeta
    engine: EngineRecord
    calibration: TrtCalibration | None
    accuracy: AccuracyReport | None  # an INT8 build with held-out images: the engine against FP32


def build_engine(onnx_path: Path, output: Path, options: BuildOptions,
                 report: Progress = silent, cuda: CudaMemory | None = None,
                 calibration: CalibrationSpec | None = None) -> BuildResult:
    """Build and write ``output`` and its sidecar; nothing is written if any step fails."""
    if not onnx_path.is_file():
        raise CtrtError(f"model not found: {onnx_path}")
    source_meta = read_meta(onnx_path)
    if source_meta.quantization and source_meta.quantization.target == "cpu":
        raise CtrtError(f"{onnx_path} was quantized for ONNX Runtime on CPU (uint8 activations, 7-bit weights); "
                        "TensorRT needs symmetric INT8: ctrt quantize ... --target tensorrt")
    major = require_tensorrt()
    import tensorrt as trt

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError on truncated files
        raise CtrtError(f"{onnx_path} is not a readable ONNX file: {str(exc).splitlines()[0]}") from None
    half_onnx = onnx_is_half(model)
    if options.fp16 and major >= 11 and not half_onnx:
        raise CtrtError("TensorRT 11 has no FP16 builder flag: precision comes from the ONNX. Export an FP16 model "
                        "(ctrt export ... --fp16) and build that without --fp16")
    quantized = is_quantized(model)
    if options.int8 and not quantized and major >= 11:
        raise CtrtError("TensorRT 11 has no implicit INT8 calibration: make a Q/DQ model with ctrt quantize "
                        f"{onnx_path} --calib-images DIR, then build that")
    precision = "int8" if options.int8 or quantized else "fp16" if options.fp16 or half_onnx else "fp32"
    cuda = cuda or open_cuda()

    logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Explicit batch is a flag before TensorRT 10 and the only mode since; 11 is always strongly typed.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if half_onnx and 10 <= major < 11:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    report("parsing ONNX")
    _parse(network, logger, onnx_path)

    config = builder.create_builder_config()
    dynamic = _add_batch_profile(builder, network, config, options.max_batch)
    if options.workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    pinned = 0
    trt_calibration = None
    if quantized and major < 11:
        config.set_flag(trt.BuilderFlag.INT8)  # explicit Q/DQ still needs the flag on weakly typed TensorRT
    if options.int8 and not quantized:
        from ..calibration.workflow import CalibrationSpec, trt_calibration as make_calibration

        trt_calibration = make_calibration(calibration or CalibrationSpec(), onnx_path, str(trt.__version__), cuda,
                                           report)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = trt_calibration.calibrator
    if half_onnx and major < 10:
        config.set_flag(trt.BuilderFlag.FP16)  # weakly typed TensorRT would otherwise run FP16 weights in FP32
    if (options.fp16 or (options.int8 and not quantized)) and not half_onnx:
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 builds run what stays out of INT8 in FP16
        keep = fp32_layer_names(model, include_context=options.int8)
        for index in range(network.num_layers):
            layer = network.get_layer(index)
            if is_fp32_layer(layer.name, keep):
                layer.precision = trt.float32
                for out in range(layer.num_outputs):
                    layer.set_output_type(out, trt.float32)
                pinned += 1
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    if options.dla_core is not None:
        if options.dla_core >= builder.num_DLA_cores:
            raise CtrtError(f"--dla-core {options.dla_core}: this device has {builder.num_DLA_cores} DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_bytes = options.timing_cache.read_bytes() if options.timing_cache and options.timing_cache.is_file() else b""
    if options.timing_cache:
        config.set_timing_cache(config.create_timing_cache(cache_bytes), False)
    if hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(report)

    report("building (minutes on a Jetson)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise CtrtError("TensorRT could not build the engine; rerun with --verbose to see why")

    gpu, capability = cuda.device()
    engine = EngineRecord(str(trt.__version__), gpu, capability, onnx_path.name, sha256_file(onnx_path), pinned,
                          cuda.name, tensor_specs(model), options.dla_core, options.max_batch if dynamic else None,
                          str(trt_calibration.cache) if trt_calibration else None)
    meta = replace(source_meta, kind="engine", precision=precision, engine=engine)
    with atomic_outputs(output, sidecar_path(output)) as (engine_tmp, sidecar_tmp):
        engine_tmp.write_bytes(memoryview(plan))
        sidecar_tmp.write_text(meta.to_json())
    if options.timing_cache:
        with atomic_output(options.timing_cache) as tmp:
            tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))
    prepared = trt_calibration.prepared if trt_calibration else None
    accuracy = None
    if prepared is not None and prepared.held_out:
        from ..calibration.workflow import write_report
        from ..runtime.backends.tensorrt_backend import TensorRTBackend

        report("measuring INT8 accuracy on held-out images")
        with TensorRTBackend(output, cuda) as built:
            accuracy = prepared.accuracy(built)
        write_report(output, accuracy)
    return BuildResult(meta, engine, trt_calibration, accuracy)
