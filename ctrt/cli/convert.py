"""The commands that make artifacts: export, build, quantize, triton (a model repository), serve, inspect."""

from __future__ import annotations

from pathlib import Path
import time
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import CtrtError
from ..outputs import check_outputs

from ..options import DAY_S, check as check_option, default
from .app import command, console, error, next_steps, notes, phases, positive, sidecars, size, titled, warning


@command(example="ctrt export model_last.pth --input-size 512x512")
def export(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="model_last.pth from CenterTrack-HarDNet or CenterNet-HarDNet")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", rich_help_panel="Outputs", help="default: export/<stem>_<H>x<W>.onnx")] = None,
    input_size: Annotated[str, typer.Option(rich_help_panel="Model", help="HxW, multiples of 32")] = "512x512",
    opset: Annotated[int, typer.Option(rich_help_panel="Graph", help="ONNX opset (TensorRT 8.5 reads up to 17)")] = 17,
    batch: Annotated[int, typer.Option(min=1, rich_help_panel="Graph", help="static batch size")] = 1,
    dynamic_batch: Annotated[bool, typer.Option(rich_help_panel="Graph", help="make the batch dimension dynamic")] = False,
    simplify: Annotated[bool, typer.Option(rich_help_panel="Graph", help="run onnx-simplifier")] = True,
    check: Annotated[bool, typer.Option(rich_help_panel="Checks", help="compare ONNX Runtime with PyTorch after export")] = True,
    atol: Annotated[Optional[float], typer.Option(callback=positive, rich_help_panel="Checks", help="allowed max-abs difference per output, > 0, times max(1, max |output|) (default 1e-4, FP16 5e-2)")] = None,
    fp16: Annotated[bool, typer.Option(rich_help_panel="Model", help="FP16 ONNX (FP32 I/O and heatmap head), what TensorRT 11 builds as FP16")] = False,
    random_init: Annotated[bool, typer.Option(rich_help_panel="Model", help="no checkpoint: seeded random weights (for trying the toolchain)")] = False,
    builtin: Annotated[Optional[str], typer.Option(rich_help_panel="Model", help="no checkpoint: a built-in model; 'demo' sees ctrt's generated demo scenes only")] = None,
    arch: Annotated[str, typer.Option(rich_help_panel="Model", help="architecture for --random-init")] = "hardnet_85",
    allow_partial: Annotated[bool, typer.Option(rich_help_panel="Model", help="load a checkpoint whose keys do not all match")] = False,
    preprocess_in_graph: Annotated[bool, typer.Option(rich_help_panel="Graph", help="take raw uint8 BGR frames; letterbox and normalise in the graph")] = False,
    source_size: Annotated[Optional[str], typer.Option(rich_help_panel="Graph", help="WxH of the camera frames, with --preprocess-in-graph")] = None,
    decode_in_graph: Annotated[bool, typer.Option(rich_help_panel="Graph", help="peak test and top-K in the graph: K-sized outputs")] = False,
    topk: Annotated[int, typer.Option(rich_help_panel="Graph", help="K for --decode-in-graph (at most TensorRT's TopK limit)")] = default("topk"),
    trt: Annotated[Optional[str], typer.Option(rich_help_panel="Checks", help="TensorRT lines whose ONNX parser must take the graph, e.g. 8.5 or 8.6,10 (default: 8.5, 8.6, 10, 11)")] = None,
) -> None:
    """Checkpoint -> simplified ONNX, checked against PyTorch and TensorRT's parser rules, with a metadata sidecar."""
    from ..artifacts import sidecar_path
    from ..export.exporter import default_output, export_options, run_export, source_model
    from ..runtime.model_notes import meta_notes
    from ..sizes import check_memory
    from ..trt_rules import parse_lines

    if (checkpoint is not None) + random_init + (builtin is not None) != 1:
        raise CtrtError("give a CHECKPOINT, or --builtin demo, or --random-init for seeded random weights")
    options = export_options(input_size, opset=opset, batch=batch, dynamic_batch=dynamic_batch, simplify=simplify,
                             preprocess_in_graph=preprocess_in_graph, source_size=source_size,
                             topk=check_option("topk", topk) if decode_in_graph else None, half=fp16)
    lines = parse_lines(trt)
    check_memory(options.input_h, options.input_w, batch)
    output = output or default_output(checkpoint, options, arch, builtin)
    check_outputs({"--output": output, "its sidecar": sidecar_path(output)}, [checkpoint])
    with phases("export") as phase:
        phase("loading the model")
        source = source_model(checkpoint, arch, allow_partial, builtin)
        result = run_export(source, output, options, check, atol, phase, lines)

    if result.parity:
        table = titled(f"ONNX Runtime (CPU) vs PyTorch{' FP32' if fp16 else ''}, tolerance {result.atol:g} x max(1, max |ref|)")
        for column in ("input", "output", "max abs", "max abs / max |ref|", ""):
            table.add_column(column, justify="right" if column.startswith("max") else "left")
        for row in result.parity:
            table.add_row(row.case, row.output, f"{row.max_abs:.2e}", f"{row.rel_to_range:.2e}",
                          "[green]ok[/]" if row.ok else "[red]FAIL[/]")
        console.print(table)
    for refusal in result.refusals:  # lines the user did not target
        warning(f"TensorRT {refusal.line} would not parse it: {refusal.text()}")
    notes(meta_notes(result.meta))
    console.print(f"wrote {escape(str(result.path))} ({size(result.path)}) and {result.path.name}.json in {result.seconds:.1f}s; "
                  f"ops: {', '.join(result.ops)}", soft_wrap=True)
    next_steps(f"ctrt run {result.path} --source 0", f"ctrt build {result.path} --fp16")


def _accuracy_table(report: Any, title: str) -> None:
    table = titled(title)
    for column in ("head", "max abs", "SQNR dB"):
        table.add_column(column, justify="left" if column == "head" else "right")
    for head in report.heads:
        table.add_row(head.head, f"{head.max_abs:.3g}", f"{head.sqnr_db:.1f}")
    console.print(table)
    if report.agreement is None:
        console.print(f"detections: FP32 found none above {report.threshold} on the {report.images} held-out images, "
                      "so detection agreement could not be measured")
        return
    console.print(f"detections: {report.matched}/{report.fp32_detections} FP32 detections above {report.threshold} "
                  f"matched at IoU >= 0.5 ({report.agreement:.1%}), mean score difference {report.mean_score_diff:+.4f}, "
                  f"on {report.images} held-out images")
    if report.missed_scores:
        missed = report.missed_scores  # sorted
        console.print(f"missed detections' FP32 scores: median {missed[len(missed) // 2]:.2f}, "
                      f"max {missed[-1]:.2f}")


@command(example="ctrt build export/model_last_512x512.onnx --fp16")
def build(
    model: Annotated[Path, typer.Argument(help="an ONNX file from ctrt export (or a Q/DQ one from ctrt quantize)")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", rich_help_panel="Outputs", help="default: engines/<stem>_<precision>.engine")] = None,
    fp16: Annotated[bool, typer.Option(rich_help_panel="Precision", help="FP16 kernels; the heatmap head stays FP32")] = False,
    int8: Annotated[bool, typer.Option(rich_help_panel="Precision", help="INT8 with TensorRT's calibrator (TensorRT 8.5-10); FP16 elsewhere")] = False,
    calib_images: Annotated[Optional[Path], typer.Option(rich_help_panel="INT8 calibration", help="folder of calibration images, e.g. coco/val2017")] = None,
    calib_annotations: Annotated[Optional[Path], typer.Option(rich_help_panel="INT8 calibration", help="COCO instances JSON for those images")] = None,
    calib_count: Annotated[int, typer.Option(min=1, rich_help_panel="INT8 calibration", help="images drawn for calibration (seeded)")] = 500,
    calib_algo: Annotated[str, typer.Option(rich_help_panel="INT8 calibration", help="entropy (IInt8EntropyCalibrator2) or minmax")] = "entropy",
    calib_cache: Annotated[Optional[Path], typer.Option(rich_help_panel="INT8 calibration", help="reuse this TensorRT calibration cache (no images needed)")] = None,
    held_out: Annotated[int, typer.Option(min=0, rich_help_panel="INT8 calibration", help="images kept out of calibration for the accuracy report")] = 50,
    workspace: Annotated[Optional[float], typer.Option(callback=positive, rich_help_panel="Engine", help="workspace limit in GiB, > 0 (default: TensorRT decides)")] = None,
    timing_cache: Annotated[Optional[Path], typer.Option(rich_help_panel="Engine", help="timing cache file, read if present and written back")] = None,
    dla_core: Annotated[Optional[int], typer.Option(min=0, rich_help_panel="Engine", help="build for this DLA core, GPU fallback on")] = None,
    max_batch: Annotated[int, typer.Option(min=1, max=256, rich_help_panel="Engine", help="a --dynamic-batch ONNX: the largest batch (streams) the engine takes")] = 8,
    verbose: Annotated[bool, typer.Option(rich_help_panel="Engine", help="TensorRT's verbose log")] = False,
) -> None:
    """ONNX -> TensorRT engine (FP32, FP16 or INT8) with a metadata sidecar; run on the device that will use it."""
    from ..artifacts import sidecar_path
    from ..calibration.workflow import CalibrationSpec, report_path
    from ..engines.builder import BuildOptions, build_engine, default_engine_path

    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    output = output or default_engine_path(model, precision)
    check_outputs({"--output": output, "its sidecar": sidecar_path(output),
                   **({"its accuracy report": report_path(output)} if int8 else {}),
                   "--timing-cache": timing_cache}, [*sidecars(model), calib_images, calib_annotations, calib_cache])
    spec = CalibrationSpec(calib_images, calib_annotations, calib_count, held_out, 0, calib_algo, calib_cache)
    options = BuildOptions(fp16=fp16, int8=int8, workspace_gib=workspace, timing_cache=timing_cache,
                           dla_core=dla_core, verbose=verbose, max_batch=max_batch)
    with phases("build") as phase:
        result = build_engine(model, output, options, report=phase, calibration=spec if int8 else None)
    meta, built = result.meta, result.engine
    console.print(f"wrote {escape(str(output))} ({size(output)}): {meta.precision}, TensorRT {built.tensorrt}, "
                  f"{escape(built.gpu)} (SM {built.compute_capability}), {built.fp32_layers} layers kept FP32"
                  + (f", calibration cache {escape(built.calibration_cache)}" if built.calibration_cache else ""),
                  soft_wrap=True)
    if result.accuracy:
        _accuracy_table(result.accuracy, f"INT8 engine vs FP32 ONNX Runtime on {result.accuracy.images} held-out images")
    next_steps(f"ctrt run {output} --source 0")


@command(example="ctrt quantize export/m.onnx --calib-images coco/val2017 --calib-annotations instances_val2017.json")
def quantize(
    model: Annotated[Path, typer.Argument(help="an FP32 ONNX file from ctrt export")],
    calib_images: Annotated[Path, typer.Option(rich_help_panel="INT8 calibration", help="folder of calibration images, e.g. coco/val2017")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", rich_help_panel="Outputs", help="default: export/<stem>_int8.onnx")] = None,
    calib_annotations: Annotated[Optional[Path], typer.Option(rich_help_panel="INT8 calibration", help="COCO instances JSON for those images")] = None,
    calib_count: Annotated[int, typer.Option(min=1, rich_help_panel="INT8 calibration", help="images drawn for calibration (seeded)")] = 500,
    held_out: Annotated[int, typer.Option(min=1, rich_help_panel="INT8 calibration", help="images kept out of calibration for the accuracy report")] = 50,
    method: Annotated[str, typer.Option(rich_help_panel="INT8 calibration", help="minmax, entropy or percentile")] = "minmax",
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, rich_help_panel="INT8 calibration", help="seed of the image draw and the previous-frame jitter")] = 0,
    target: Annotated[str, typer.Option(rich_help_panel="Precision", help="tensorrt: symmetric INT8 that TensorRT 10/11 build (ONNX Runtime runs "
                                             "it too); cpu: fastest and most accurate on ONNX Runtime's x86 kernels")
                      ] = "tensorrt",
) -> None:
    """FP32 ONNX -> INT8 Q/DQ ONNX, for TensorRT 10/11 (explicit quantization) or ONNX Runtime on CPU."""
    from ..artifacts import sidecar_path
    from ..calibration.quantize import METHODS
    from ..calibration.workflow import CalibrationSpec, default_quantized_path, quantize_model, report_path

    if method not in METHODS:
        raise CtrtError(f"--method {method!r}: choose {', '.join(METHODS)}")
    output = output or default_quantized_path(model)
    check_outputs({"--output": output, "its sidecar": sidecar_path(output), "its accuracy report": report_path(output)},
                  [*sidecars(model), calib_images, calib_annotations])
    spec = CalibrationSpec(calib_images, calib_annotations, calib_count, held_out, seed)
    with phases("quantize") as phase:
        phase("preparing calibration data")
        meta, report, kept = quantize_model(model, output, spec, method, target, phase)
    how = "ONNX Runtime CPU kernels" if target == "cpu" else "Q/DQ arithmetic, as TensorRT computes it"
    if report is not None:
        _accuracy_table(report, f"INT8 Q/DQ vs FP32 on {report.images} held-out images ({how})")
    console.print(f"wrote {escape(str(output))} ({size(output)}), {output.name}.json"
                  + (f" and {escape(report_path(output).name)}" if report is not None else "")
                  + f"; {len(kept)} nodes kept in float", soft_wrap=True)
    next_steps(f"ctrt run {output} --source 0", f"ctrt bench {model} {output}",
          *([] if target == "cpu" else [f"ctrt build {output}"]))


@command(example="ctrt triton engines/m_fp16.engine -o models")
def triton(
    model: Annotated[Path, typer.Argument(help="an .onnx from ctrt export/quantize or an engine from ctrt build")],
    output: Annotated[Path, typer.Option("-o", "--output", rich_help_panel="Outputs", help="the model repository (created, or an existing one to add to)")],
    name: Annotated[str, typer.Option(rich_help_panel="Triton", help="the model's name on the server (a folder in the repository)")] = "ctrt",
    backend: Annotated[str, typer.Option(rich_help_panel="Triton", help="ONNX: onnxruntime (Triton's ONNX Runtime backend) or python (ONNX Runtime in Triton's Python backend: servers without GPU or ONNX Runtime backend); engines: tensorrt_plan always")] = "auto",
    max_batch: Annotated[Optional[int], typer.Option(min=0, max=1024, rich_help_panel="Triton", help="largest batch the server gathers from requests (default 8 where the model takes any batch; 0: no batching)")] = None,
    instances: Annotated[int, typer.Option(min=1, max=64, rich_help_panel="Triton", help="model instances per device")] = 1,
    queue_delay_us: Annotated[int, typer.Option(min=0, max=10_000_000, rich_help_panel="Triton", help="how long the dynamic batcher waits to fill a batch")] = 500,
    kind: Annotated[str, typer.Option(rich_help_panel="Triton", help="where instances run: auto (GPU, CPU for --backend python), cpu or gpu")] = "auto",
    ort_tensorrt: Annotated[bool, typer.Option(rich_help_panel="Triton", help="onnxruntime backend: TensorRT execution accelerator")] = False,
    fp16: Annotated[bool, typer.Option(rich_help_panel="Triton", help="with --ort-tensorrt: FP16 engines")] = False,
    stateful: Annotated[bool, typer.Option(rich_help_panel="Triton", help="keep each stream's previous frame on the server (Triton's sequence batcher): clients send one raw or JPEG frame and last frame's boxes, get the top-K back; needs a fast-path model (--dynamic-batch --preprocess-in-graph --source-size WxH --decode-in-graph)")] = False,
    sequence_idle_s: Annotated[int, typer.Option(min=1, max=DAY_S, rich_help_panel="Triton", help="with --stateful: seconds a silent stream keeps its sequence (its client then starts it again)")] = 60,
    max_sequences: Annotated[int, typer.Option(min=1, max=4096, rich_help_panel="Triton", help="with --stateful: streams the server holds at once; more wait for a free one")] = 64,
) -> None:
    """Write a Triton Inference Server model repository for a model: config, model file, ctrt metadata."""
    from ..triton.repository import RepositoryOptions, write_repository

    if fp16 and not ort_tensorrt:
        raise CtrtError("--fp16 applies with --ort-tensorrt; for an FP16 model export or build one")
    options = RepositoryOptions(name, backend, max_batch, instances, queue_delay_us, kind, ort_tensorrt, fp16,
                                stateful, sequence_idle_s, max_sequences)
    repository = write_repository(model, output, options)
    batching = (f"sequence batching of up to {max_sequences} streams, batches up to {repository.max_batch}, "
                f"idle timeout {sequence_idle_s} s" if stateful else
                f"dynamic batching up to {repository.max_batch}" if repository.max_batch
                else "no server-side batching (the model takes a fixed batch)")
    console.print(f"wrote {escape(str(repository.model_dir))}: {repository.platform}, {batching}, "
                  f"{instances} instance(s)", soft_wrap=True)
    next_steps(f"ctrt serve {output}    (or NVIDIA's Triton container: docs, Serving from Triton)",
          f"ctrt run triton://127.0.0.1:8001/{name} --source 0")


@command(example="ctrt serve models")
def serve(
    repository: Annotated[Path, typer.Argument(help="a model repository written by ctrt triton")],
    env: Annotated[Path, typer.Option(envvar="CTRT_TRITON_ENV", rich_help_panel="Triton", help="environment holding nvidia-pytriton, onnxruntime and numpy<2 (make triton-env)")] = Path(".venv-triton"),
    host: Annotated[str, typer.Option(rich_help_panel="Service", help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(min=1, max=65535, rich_help_panel="Service", help="gRPC port (triton://)")] = 8001,
    http_port: Annotated[int, typer.Option(min=1, max=65535, rich_help_panel="Service", help="HTTP port (http://, health, statistics)")] = 8000,
    metrics_port: Annotated[int, typer.Option(min=1, max=65535, rich_help_panel="Service", help="Prometheus metrics port")] = 8002,
    log: Annotated[Optional[Path], typer.Option(rich_help_panel="Outputs", help="append the server's log to this file")] = None,
) -> None:
    """Run Triton Inference Server here, without a container, from the nvidia-pytriton wheel (Python-backend models;
    on GPU servers use NVIDIA's container). Ctrl-C or SIGTERM stops it."""
    from ..triton.local_server import LocalTriton, Ports

    if len({grpc_port, http_port, metrics_port}) < 3:
        raise CtrtError("--grpc-port, --http-port and --metrics-port must differ")
    if log is not None:
        check_outputs({"--log": log})
    server = LocalTriton(repository, env, Ports(grpc_port, http_port, metrics_port), host, log)
    try:
        with console.status("starting tritonserver"):
            server.start()
            server.wait_ready()
        console.print(f"serving {escape(str(repository))}: gRPC {host}:{grpc_port} (triton://), "
                      f"HTTP {host}:{http_port}, metrics {host}:{metrics_port}; Ctrl-C stops", soft_wrap=True)
        while server.running:
            time.sleep(0.5)
        error(f"tritonserver exited with code {server.exit_code}" + (f"; its log: {log}" if log else ""))
        raise typer.Exit(1)
    except KeyboardInterrupt as exc:  # the normal way a server ends, under systemd or docker too
        console.print(f"stopping tritonserver ({exc})")
    finally:
        server.stop()


@command(example="ctrt inspect model_last.pth")
def inspect(path: Annotated[Path, typer.Argument(help="a checkpoint (.pth) or an exported model (.onnx)")]) -> None:
    """Show what ctrt infers from a checkpoint or reads from an ONNX file."""
    from ..inspection import describe

    table = Table(show_header=False, title=str(path))
    for key, value in describe(path):
        table.add_row(key, value)
    console.print(table)
