"""The ``ctrt`` command line: parses options, calls the library, renders with rich. No logic of its own."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .errors import CtrtError, Interrupted
from .outputs import check_outputs
from .progress import Progress
from .shutdown import stop_on_signals

# OpenCV and FFmpeg log to stderr on their own (a refused connection, a missing moov atom) next to our one line;
# quiet them unless the user asks for them (e.g. OPENCV_FFMPEG_LOGLEVEL=24 for FFmpeg's warnings).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="CenterTrack-HarDNet: checkpoint -> ONNX -> TensorRT engine -> tracking on a live camera.",
)
# In a pipe or a log rich would wrap at 80 columns, mid-sentence; there, lines may be as long as they need.
LOG_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
console = Console(highlight=False, width=LOG_WIDTH)
errors = Console(stderr=True, highlight=False, width=LOG_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])
# Module -> (what to call it, the extra that installs it); see pyproject.toml. On a Jetson, TensorRT, OpenCV and
# PyTorch come from JetPack / NVIDIA's wheels instead (README: "Install").
EXTRAS = {"torch": ("PyTorch", "export"), "onnxsim": ("onnx-simplifier", "export"),
          "onnxscript": ("onnxscript", "export"), "onnxruntime": ("ONNX Runtime", "cpu"),
          "cv2": ("OpenCV", "video"), "tritonclient": ("tritonclient", "serve"), "trackeval": ("TrackEval", "eval"),
          "pycocotools": ("pycocotools", "eval"), "matplotlib": ("matplotlib", "plot"),
          "cuda": ("cuda-python", "trt"), "pycuda": ("pycuda", "pycuda")}


def _show_version(value: bool) -> None:
    if value:
        console.print(f"ctrt {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_show_version,
                                          help="print the version and exit")] = False,
) -> None:
    """CenterTrack-HarDNet: checkpoint -> ONNX -> TensorRT engine -> tracking on a live camera."""


@contextlib.contextmanager
def _phases(what: str) -> Iterator[Progress]:
    """A long command's phases with the time since it began: on a terminal a spinner (lines marked ``keep`` stay),
    in a pipe or a log (systemd, docker) one plain line per phase, never wrapped."""
    start = time.perf_counter()
    if console.is_terminal:
        with console.status(what) as status:
            def show(text: str, keep: bool = False) -> None:
                if keep:
                    console.print(escape(text), soft_wrap=True)
                status.update(f"{escape(what)}: {escape(text)} ({time.perf_counter() - start:.0f} s)")

            yield show
    else:
        def line(text: str, keep: bool = False) -> None:
            console.print(f"{escape(what)}: {escape(text)} ({time.perf_counter() - start:.1f} s)", soft_wrap=True)

        yield line


def _titled(title: str) -> Table:
    """A table at least as wide as its title, so the title is never broken across lines."""
    return Table(title=title, min_width=min(len(title), console.width))


def _error(message: str) -> None:
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def _warning(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def command(fn: F) -> F:
    """Register ``fn`` as a subcommand. User errors print as one line with exit code 2; Ctrl-C, SIGTERM and SIGHUP
    stop it the same way (outputs finalised or not written at all) with exit code 128 + signal."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with stop_on_signals():
                return fn(*args, **kwargs)
        except CtrtError as exc:
            _error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:  # an optional dependency this command needs is not installed
            top = (exc.name or "").split(".")[0]
            if top not in EXTRAS:
                raise
            package, extra = EXTRAS[top]
            _error(f"ctrt {fn.__name__.replace('_', '-')} needs {package}, which is not installed: "
                   f"pip install 'ctrt[{extra}]'")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            stop = exc if isinstance(exc, Interrupted) else Interrupted()
            errors.print(f"interrupted ({stop}): {fn.__name__} stopped before finishing and left no partial file")
            raise typer.Exit(stop.exit_code) from None

    app.command()(wrapper)
    return fn


def _positive(value: Optional[float]) -> Optional[float]:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not > 0")
    return value


def _probability(value: Optional[float]) -> Optional[float]:
    if value is not None and not 0 <= value <= 1:
        raise typer.BadParameter(f"{value:g} is not a score in [0, 1]")
    return value


def _sidecars(*paths: Optional[Path]) -> list[Optional[Path]]:
    """A model file and its metadata sidecar: both are inputs that no output may replace."""
    from .artifacts import sidecar_path

    return [q for p in paths for q in ((p, sidecar_path(p)) if p else ())]


def _local(model: str) -> Optional[Path]:
    """The file a model argument names, None for a model served by Triton."""
    from .runtime.backends.triton_backend import is_triton_url

    return None if is_triton_url(model) else Path(model)


def _next(*commands: str) -> None:
    """The commands a user would run next, unwrapped so they can be copied."""
    console.print("next:")
    for line in commands:
        console.print(f"  {escape(line)}", soft_wrap=True)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


@command
def export(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="model_last.pth from CenterTrack-HarDNet or CenterNet-HarDNet")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="default: export/<stem>_<H>x<W>.onnx")] = None,
    input_size: Annotated[str, typer.Option(help="HxW, multiples of 32")] = "512x512",
    opset: Annotated[int, typer.Option(help="ONNX opset (TensorRT 8.5 reads up to 17)")] = 17,
    batch: Annotated[int, typer.Option(min=1, help="static batch size")] = 1,
    dynamic_batch: Annotated[bool, typer.Option(help="make the batch dimension dynamic")] = False,
    simplify: Annotated[bool, typer.Option(help="run onnx-simplifier")] = True,
    check: Annotated[bool, typer.Option(help="compare ONNX Runtime with PyTorch after export")] = True,
    atol: Annotated[Optional[float], typer.Option(callback=_positive, help="allowed max-abs difference per output, > 0, times max(1, max |output|) (default 1e-4, FP16 5e-2)")] = None,
    fp16: Annotated[bool, typer.Option(help="FP16 ONNX (FP32 I/O and heatmap head), what TensorRT 11 builds as FP16")] = False,
    random_init: Annotated[bool, typer.Option(help="no checkpoint: seeded random weights (for trying the toolchain)")] = False,
    builtin: Annotated[Optional[str], typer.Option(help="no checkpoint: a built-in model; 'demo' sees ctrt's generated demo scenes only")] = None,
    arch: Annotated[str, typer.Option(help="architecture for --random-init")] = "hardnet_85",
    allow_partial: Annotated[bool, typer.Option(help="load a checkpoint whose keys do not all match")] = False,
    preprocess_in_graph: Annotated[bool, typer.Option(help="take raw uint8 BGR frames; letterbox and normalise in the graph")] = False,
    source_size: Annotated[Optional[str], typer.Option(help="WxH of the camera frames, with --preprocess-in-graph")] = None,
    decode_in_graph: Annotated[bool, typer.Option(help="peak test and top-K in the graph: K-sized outputs")] = False,
    topk: Annotated[int, typer.Option(min=1, max=3840, help="K for --decode-in-graph (TensorRT's TopK allows 3840)")] = 100,
) -> None:
    """Checkpoint -> simplified ONNX, checked against PyTorch, with a metadata sidecar."""
    from .artifacts import sidecar_path
    from .export.exporter import default_output, export_options, run_export, source_model
    from .sizes import check_memory

    if (checkpoint is not None) + random_init + (builtin is not None) != 1:
        raise CtrtError("give a CHECKPOINT, or --builtin demo, or --random-init for seeded random weights")
    options = export_options(input_size, opset=opset, batch=batch, dynamic_batch=dynamic_batch, simplify=simplify,
                             preprocess_in_graph=preprocess_in_graph, source_size=source_size,
                             topk=topk if decode_in_graph else None, half=fp16)
    check_memory(options.input_h, options.input_w, batch)
    output = output or default_output(checkpoint, options, arch, builtin)
    check_outputs({"--output": output, "its sidecar": sidecar_path(output)}, [checkpoint])
    with _phases("export") as phase:
        phase("loading the model")
        source = source_model(checkpoint, arch, allow_partial, builtin)
        result = run_export(source, output, options, check, atol, phase)

    if result.parity:
        table = _titled(f"ONNX Runtime (CPU) vs PyTorch{' FP32' if fp16 else ''}, tolerance {result.atol:g} x max(1, max |ref|)")
        for column in ("input", "output", "max abs", "max abs / max |ref|", ""):
            table.add_column(column, justify="right" if column.startswith("max") else "left")
        for row in result.parity:
            table.add_row(row.case, row.output, f"{row.max_abs:.2e}", f"{row.rel_to_range:.2e}",
                          "[green]ok[/]" if row.ok else "[red]FAIL[/]")
        console.print(table)
    _model_note(result.meta)
    console.print(f"wrote {escape(str(result.path))} ({_size(result.path)}) and {result.path.name}.json in {result.seconds:.1f}s; "
                  f"ops: {', '.join(result.ops)}", soft_wrap=True)
    _next(f"ctrt run {result.path} --source 0", f"ctrt build {result.path} --fp16")


def _model_note(meta: Any) -> None:
    """Say plainly when a model's detections mean little or nothing outside ctrt's own scenes."""
    from .model.config import BUILTINS

    if meta.random_weights:
        console.print("[yellow]note:[/] this model has random (seeded) weights; its detections mean nothing")
    elif meta.builtin:
        console.print(f"[yellow]note:[/] {escape(BUILTINS.get(meta.builtin, meta.builtin))}", soft_wrap=True)


def _track(backend: Any, source: Any, sinks: list[Any], k: int, out_thresh: float, tracker: Any,
           max_frames: Optional[int]) -> Any:
    """Run the loop with a progress bar (total and ETA) on a finite source, a status line on a live one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .runtime.pipeline import TrackingPipeline
    from .runtime.runner import run_stream

    pipeline = TrackingPipeline(backend, k=k, threshold=out_thresh, tracker=tracker)
    total = min((n for n in (source.total, max_frames) if n), default=None)
    columns = [TextColumn("{task.description}")] + (
        [BarColumn(), MofNCompleteColumn(), TextColumn("ETA"), TimeRemainingColumn()] if total else [])
    state = {"shown": 0.0, "start": time.perf_counter()}
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("tracking", total=total)

        def on_frame(index: int, tracks: Any) -> None:
            now = time.perf_counter()
            if now - state["shown"] < 0.25:
                return
            state["shown"] = now
            stages = " ".join(f"{k} {v:.1f}" for k, v in pipeline.times.recent_mean().items())
            fps = (index + 1) / (now - state["start"])
            shown = int(tracks.shown.sum())
            # Beside a bar the line stays short; a live source has room for the stage times.
            progress.update(task, completed=index + 1, description=f"{fps:.1f} FPS, {shown} tracks" if total
                            else f"frame {index + 1} | {fps:.1f} FPS | ms: {stages} | tracks {shown}")

        return run_stream(pipeline, source, sinks, max_frames, on_frame)


def _stream_status(start: float) -> tuple[Any, Callable[[Any, Any], None]]:
    """A live status line for multi-stream runs, refreshed at most 4 times a second."""
    from rich.live import Live

    live = Live(console=console, transient=True, refresh_per_second=4)
    counts: dict[str, int] = {}
    shown = [0.0]

    def on_frame(stream: Any, tracks: Any) -> None:
        counts[stream.name] = stream.frames
        now = time.perf_counter()
        if now - shown[0] >= 0.25:
            shown[0] = now
            total = sum(counts.values())
            live.update(f"{len(counts)} streams | {total} frames | {total / (now - start):.1f} FPS in all | "
                        + " ".join(f"{name} {n}" for name, n in counts.items()))

    return live, on_frame


def _track_live(backend: Any, source: Any, sinks: list[Any], policy: str, k: int, out_thresh: float, tracker: Any,
                max_frames: Optional[int]) -> Any:
    """One live source through the threaded reader; summarised like a synchronous run."""
    from .runtime.runner import RunSummary
    from .runtime.streams import Stream, run_streams

    live, on_frame = _stream_status(time.perf_counter())
    with live:
        result = run_streams(backend, [Stream(source.spec, source, sinks, policy)], k, out_thresh, tracker,
                             max_frames, overlap=False, on_frame=on_frame)
    stream = result.streams[0]
    if stream.frames == 0 and not result.interrupted:
        raise CtrtError(stream.error or source.nothing_read())
    if stream.dropped:
        console.print(f"{stream.dropped} stale frames dropped to stay live (--drop latest)")
    return RunSummary(frames=stream.frames, tracks=stream.tracks, seconds=stream.seconds, skipped=stream.skipped,
                      reconnects=stream.reconnects, lost=stream.lost, interrupted=result.interrupted,
                      stage_ms=stream.stage_ms)


def _track_streams(backend: Any, specs: list[str], names: list[str], save_dir: Optional[Path], drop: Optional[str],
                   overlap: bool, reconnects: int, k: int, out_thresh: float, tracker: Any,
                   max_frames: Optional[int]) -> None:
    from .runtime.sinks import JsonLinesSink, MotSink, VideoSink
    from .runtime.streams import batch_note, open_streams, run_streams, save_paths

    def sinks_for(name: str, fps: float) -> list[Any]:
        if save_dir is None:
            return []
        video, mot, jsonl = save_paths(save_dir, name)
        return [VideoSink(video, fps), MotSink(mot), JsonLinesSink(jsonl)]

    streams = open_streams(specs, names, drop, reconnects, sinks_for, _warning)
    note = batch_note(backend.meta.batch, len(streams))
    if note:
        _warning(note)
    live, on_frame = _stream_status(time.perf_counter())
    with live:
        result = run_streams(backend, streams, k, out_thresh, tracker, max_frames, overlap, on_frame)
    table = _titled(f"{len(streams)} streams on {escape(backend.name)}: {result.frames} frames in "
                        f"{result.seconds:.1f} s ({result.frames / max(result.seconds, 1e-9):.2f} FPS in all), "
                        f"{result.batches} model calls")
    for column in ("stream", "frames", "dropped", "skipped", "reconnects", "track ids", "FPS", "latency p50 ms"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for stream in result.streams:
        latency = sorted(stream.latency_ms)
        table.add_row(escape(stream.name), str(stream.frames), str(stream.dropped), str(stream.skipped),
                      str(stream.reconnects), str(stream.tracks), f"{stream.fps:.2f}",
                      f"{latency[len(latency) // 2]:.0f}" if latency else "-")
    console.print(table)
    for stream in result.streams:
        if stream.error:
            _warning(f"{stream.name}: {stream.error}")
        elif stream.frames == 0 and not result.interrupted:
            _warning(f"{stream.name}: no frame could be read")
    written = [s.name for s in result.streams if s.frames]
    if save_dir is not None and written:
        console.print(f"wrote <name>.mp4, .txt and .jsonl for {', '.join(map(escape, written))} to "
                      f"{escape(str(save_dir))}", soft_wrap=True)
    if result.interrupted:
        errors.print(f"interrupted ({result.interrupted}): {result.frames} frames written")
        raise typer.Exit(result.interrupted.exit_code)
    lost = [s.name for s in result.streams if s.lost]
    if lost:
        _error(f"streams lost and not back after {reconnects} attempts: {', '.join(lost)}")
        raise typer.Exit(1)


def _report(summary: Any, outputs: list[Path], backend_name: str) -> None:
    console.print(f"{summary.frames} frames, {summary.tracks} track ids, {summary.fps:.2f} FPS on {backend_name}"
                  + (f", {summary.skipped} unreadable frames skipped" if summary.skipped else "")
                  + (f", {summary.reconnects} reconnects" if summary.reconnects else ""), soft_wrap=True)
    if summary.stage_ms:
        console.print("mean ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.stage_ms.items()),
                      soft_wrap=True)
    for path in outputs:
        if path.exists():
            console.print(f"wrote {escape(str(path))} ({_size(path)})", soft_wrap=True)


def _check_run_outputs(save_video: Optional[Path], save_mot: Optional[Path], save_json: Optional[Path],
                       inputs: list[Optional[Path]]) -> None:
    from .runtime.sinks import VIDEO_SUFFIXES

    if save_video and save_video.suffix.lower() not in VIDEO_SUFFIXES:
        raise CtrtError(f"--save-video {save_video}: name it .mp4 (mp4v) or .avi (MJPG)")
    check_outputs({"--save-video": save_video, "--save-mot": save_mot, "--save-json": save_json}, inputs)


def _finish_run(summary: Any, outputs: list[Path], backend_name: str, source: str, reconnects: int) -> None:
    """The summary, then the exit code: 0 at the end of the source, 1 for a lost live source, 128 + signal when
    stopped by Ctrl-C/SIGTERM/SIGHUP (outputs complete in every case)."""
    _report(summary, outputs, backend_name)
    if summary.interrupted:
        errors.print(f"interrupted ({summary.interrupted}): {summary.frames} frames written")
        raise typer.Exit(summary.interrupted.exit_code)
    if summary.lost:
        _error(f"source {source!r} was lost and did not come back after {reconnects} attempts")
        raise typer.Exit(1)


def _sinks(save_video: Optional[Path], save_mot: Optional[Path], save_json: Optional[Path], show: bool,
           fps: float) -> tuple[list[Any], list[Path]]:
    from .runtime.sinks import JsonLinesSink, MotSink, VideoSink, WindowSink

    sinks: list[Any] = []
    if show:
        sinks.append(WindowSink())
    if save_video:
        sinks.append(VideoSink(save_video, fps))
    if save_mot:
        sinks.append(MotSink(save_mot))
    if save_json:
        sinks.append(JsonLinesSink(save_json))
    return sinks, [p for p in (save_video, save_mot, save_json) if p]


@command
def run(
    model: Annotated[str, typer.Argument(help="exported .onnx (ONNX Runtime), .engine (TensorRT), a .pth checkpoint (PyTorch), or a model on Triton: triton://HOST:PORT/MODEL (gRPC), http://HOST:PORT/MODEL")],
    source: Annotated[Optional[list[str]], typer.Option("-s", "--source", help="camera index, video, folder, glob, URL or GStreamer pipeline; repeat for several streams (default: camera 0)")] = None,
    sources: Annotated[Optional[Path], typer.Option(help="a text file of sources, one a line")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(help="per stream: <name>.mp4, <name>.txt (MOT) and <name>.jsonl here")] = None,
    drop: Annotated[Optional[str], typer.Option(help="latest: keep only the newest frame when behind (default for cameras and streams); none: every frame (default for files)")] = None,
    overlap: Annotated[bool, typer.Option(help="several streams: pre-process and track one batch while another runs on the model")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda (ONNX Runtime also: tensorrt)")] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="ONNX Runtime intra-op threads (0 = all cores)")] = 0,
    input_size: Annotated[str, typer.Option(help="HxW for a .pth checkpoint (an .onnx carries its own)")] = "512x512",
    k: Annotated[int, typer.Option("-k", "--topk", min=1, max=3840, help="detections kept per frame")] = 100,
    track_thresh: Annotated[float, typer.Option(min=0.0, max=1.0, help="score threshold for output, new tracks and pre_hm")] = 0.3,
    pre_thresh: Annotated[Optional[float], typer.Option(callback=_probability, help="pre_hm threshold in [0, 1] (at least --track-thresh)")] = None,
    new_thresh: Annotated[Optional[float], typer.Option(callback=_probability, help="new-track threshold in [0, 1] (at least --track-thresh)")] = None,
    tracker_preset: Annotated[str, typer.Option(help="centertrack (CenterTrack's tracker, exactly) or robust (keeps ids through misses and occlusions); the options below override it")] = "centertrack",
    max_age: Annotated[Optional[int], typer.Option(min=-1, help="frames an unmatched track survives (-1: none, as CenterTrack)")] = None,
    hungarian: Annotated[Optional[bool], typer.Option("--hungarian/--greedy", help="optimal assignment, or CenterTrack's greedy matching")] = None,
    coast: Annotated[Optional[bool], typer.Option("--coast/--no-coast", help="a track kept by --max-age moves on at its smoothed velocity, yielding to tracks seen last frame")] = None,
    low_thresh: Annotated[Optional[float], typer.Option(callback=_probability, help="BYTE: detections from this score up to --track-thresh continue tracks left unmatched")] = None,
    min_hits: Annotated[Optional[int], typer.Option(min=1, max=100, help="report a track from its Nth matched frame on (1: at once, as CenterTrack)")] = None,
    gate: Annotated[Optional[float], typer.Option(min=0.01, max=1.0, help="a detection continues a track only within this share of the box size, or 4x the offsets' measured miss if more (1: as CenterTrack)")] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="annotated video (.mp4 or .avi)")] = None,
    save_mot: Annotated[Optional[Path], typer.Option(help="MOTChallenge txt")] = None,
    save_json: Annotated[Optional[Path], typer.Option(help="JSON lines, one frame per line, CenterTrack's fields")] = None,
    show: Annotated[bool, typer.Option(help="show a window (needs GUI OpenCV)")] = False,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="stop after N frames (per stream)")] = None,
    reconnects: Annotated[int, typer.Option(min=0, help="reopen attempts when a live source drops")] = 5,
    allow_partial: Annotated[bool, typer.Option(help="load a checkpoint whose keys do not all match")] = False,
    shm: Annotated[bool, typer.Option(help="Triton on this host: pass tensors through system shared memory")] = False,
) -> None:
    """Track objects on cameras, videos, streams or image folders: one stream, or several batched on one model."""
    from .runtime.capture import POLICIES
    from .runtime.runner import open_backend
    from .runtime.sources import FrameSource, source_files
    from .runtime.streams import read_sources_file, save_paths, stream_names
    from .runtime.tracker import TrackerConfig
    from .sizes import check_memory, parse_input_size

    specs = [*(source or []), *(read_sources_file(sources) if sources else [])] or ["0"]
    if drop is not None and drop not in POLICIES:
        raise CtrtError(f"--drop {drop!r}: choose latest or none")
    several = len(specs) > 1 or save_dir is not None
    if several and (save_video or save_mot or save_json or show):
        raise CtrtError("with several sources (or --save-dir) give --save-dir DIR: each stream gets its own "
                        "video, MOT and JSON-lines file there")
    inputs = [*_sidecars(_local(model)), *(p for spec in specs for p in source_files(spec)), sources]
    names = stream_names(specs)
    if save_dir is not None:
        check_outputs({f"--save-dir {save_dir}: {path.name}": path for name in names for path in save_paths(save_dir, name)},
                      inputs)
    else:
        _check_run_outputs(save_video, save_mot, save_json, inputs)
    tracker = TrackerConfig.from_options(track_thresh, pre_thresh, new_thresh, max_age, hungarian, tracker_preset,
                                         coast, low_thresh, min_hits, gate)
    hw = parse_input_size(input_size)
    if Path(model).suffix.lower() in (".pth", ".pt"):
        check_memory(*hw)
    backend = open_backend(model, device, threads, hw, allow_partial, shm=shm, reconnects=reconnects,
                           notify=_warning)
    _model_note(backend.meta)
    _warn_int8_kernels(backend)
    if several:
        with backend:
            _track_streams(backend, specs, names, save_dir, drop, overlap, reconnects, k, track_thresh, tracker,
                           max_frames)
        return
    frames = FrameSource(specs[0], reconnects=reconnects, notify=_warning)
    sinks, outputs = _sinks(save_video, save_mot, save_json, show, frames.fps)
    with backend:
        if (drop or ("latest" if frames.live else "none")) == "none":
            summary = _track(backend, frames, sinks, k, track_thresh, tracker, max_frames)
        else:  # a live camera: a reader thread keeps the newest frame, so latency cannot grow
            summary = _track_live(backend, frames, sinks, drop or "latest", k, track_thresh, tracker, max_frames)
    _finish_run(summary, outputs, backend.name, specs[0], reconnects)


@command
def demo(
    checkpoint: Annotated[Optional[Path], typer.Option(help="use your checkpoint instead of the built-in demo model")] = None,
    input_size: Annotated[str, typer.Option(help="HxW of the model (the demo model is fitted at 256x256)")] = "256x256",
    frames: Annotated[int, typer.Option(min=2, max=100000, help="length of the generated video")] = 30,
    streams: Annotated[int, typer.Option(min=1, max=64, help="generated videos tracked at once, batched on one model")] = 1,
    output_dir: Annotated[Path, typer.Option(help="where the videos, MOT txt and JSON go")] = Path("runs/demo"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """The whole chain on a fresh machine: generated video -> exported model -> tracker -> saved outputs."""
    from .demo import DEMO_RUN_OPTIONS, demo_model, demo_tracker, make_demo_video
    from .runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from .runtime.decode import TOPK
    from .runtime.sources import FrameSource
    from .runtime.streams import save_paths
    from .runtime.tracker import TrackerConfig
    from .sizes import check_memory, parse_input_size

    h, w = parse_input_size(input_size)
    check_memory(h, w, streams)
    names = ["input"] if streams == 1 else [f"input-{i}" for i in range(streams)]
    planned = {f"--output-dir {output_dir}: {n}.mp4": output_dir / f"{n}.mp4" for n in names}
    if streams == 1:
        planned.update({f"--output-dir {output_dir}: tracks{p.suffix}": output_dir / f"tracks{p.suffix}"
                        for p in save_paths(output_dir, "tracks")})
    else:
        planned.update({f"--output-dir {output_dir}: {p.name}": p for n in names
                        for p in save_paths(output_dir / "tracks", n)})
    check_outputs(planned, [checkpoint])
    videos = [make_demo_video(output_dir / f"{name}.mp4", frames, seed=i) for i, name in enumerate(names)]
    console.print(f"wrote {len(videos)} generated video(s) of {frames} frames to {escape(str(output_dir))}: "
                  "photographs of a cat, a cup, a rocket and an astronaut gliding over a blurred backdrop",
                  soft_wrap=True)
    with console.status("exporting the demo model and checking it against PyTorch"):
        onnx_path, exported = demo_model(checkpoint, h, w)
    if exported is not None:
        worst = max(r.max_abs for r in exported.parity)
        console.print(f"wrote {escape(str(onnx_path))}; ONNX Runtime vs PyTorch max abs error {worst:.1e}",
                      soft_wrap=True)
    backend = OnnxRuntimeBackend(onnx_path, device)
    _model_note(backend.meta)
    tracker = TrackerConfig() if checkpoint else demo_tracker()  # a checkpoint: CenterTrack's defaults
    if checkpoint is None:
        console.print(f"tracker: {' '.join(DEMO_RUN_OPTIONS)}, the demo model's operating point (ctrt run uses "
                      "CenterTrack's defaults unless told)", soft_wrap=True)
    if streams > 1:
        with backend:
            _track_streams(backend, [str(v) for v in videos], names, output_dir / "tracks", None, True, 0, TOPK,
                           tracker.track_thresh, tracker, None)
    else:
        source = FrameSource(str(videos[0]))
        sinks, outputs = _sinks(*save_paths(output_dir, "tracks"), False, source.fps)
        with backend:
            summary = _track(backend, source, sinks, TOPK, tracker.track_thresh, tracker, None)
        _finish_run(summary, outputs, backend.name, str(videos[0]), 0)
    _next(f"ctrt run {onnx_path} --source 0 --save-video out.mp4", f"ctrt inspect {onnx_path}")


def _accuracy_table(report: Any, title: str) -> None:
    table = _titled(title)
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


@command
def build(
    model: Annotated[Path, typer.Argument(help="an ONNX file from ctrt export (or a Q/DQ one from ctrt quantize)")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="default: engines/<stem>_<precision>.engine")] = None,
    fp16: Annotated[bool, typer.Option(help="FP16 kernels; the heatmap head stays FP32")] = False,
    int8: Annotated[bool, typer.Option(help="INT8 with TensorRT's calibrator (TensorRT 8.5-10); FP16 elsewhere")] = False,
    calib_images: Annotated[Optional[Path], typer.Option(help="folder of calibration images, e.g. coco/val2017")] = None,
    calib_annotations: Annotated[Optional[Path], typer.Option(help="COCO instances JSON for those images")] = None,
    calib_count: Annotated[int, typer.Option(min=1, help="images drawn for calibration (seeded)")] = 500,
    calib_algo: Annotated[str, typer.Option(help="entropy (IInt8EntropyCalibrator2) or minmax")] = "entropy",
    calib_cache: Annotated[Optional[Path], typer.Option(help="reuse this TensorRT calibration cache (no images needed)")] = None,
    held_out: Annotated[int, typer.Option(min=0, help="images kept out of calibration for the accuracy report")] = 50,
    workspace: Annotated[Optional[float], typer.Option(callback=_positive, help="workspace limit in GiB, > 0 (default: TensorRT decides)")] = None,
    timing_cache: Annotated[Optional[Path], typer.Option(help="timing cache file, read if present and written back")] = None,
    dla_core: Annotated[Optional[int], typer.Option(min=0, help="build for this DLA core, GPU fallback on")] = None,
    max_batch: Annotated[int, typer.Option(min=1, max=256, help="a --dynamic-batch ONNX: the largest batch (streams) the engine takes")] = 8,
    verbose: Annotated[bool, typer.Option(help="TensorRT's verbose log")] = False,
) -> None:
    """ONNX -> TensorRT engine (FP32, FP16 or INT8) with a metadata sidecar; run on the device that will use it."""
    from .artifacts import sidecar_path
    from .calibration.workflow import CalibrationSpec, report_path
    from .engines.builder import BuildOptions, build_engine, default_engine_path

    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    output = output or default_engine_path(model, precision)
    check_outputs({"--output": output, "its sidecar": sidecar_path(output),
                   **({"its accuracy report": report_path(output)} if int8 else {}),
                   "--timing-cache": timing_cache}, [*_sidecars(model), calib_annotations, calib_cache])
    spec = CalibrationSpec(calib_images, calib_annotations, calib_count, held_out, 0, calib_algo, calib_cache)
    options = BuildOptions(fp16=fp16, int8=int8, workspace_gib=workspace, timing_cache=timing_cache,
                           dla_core=dla_core, verbose=verbose, max_batch=max_batch)
    with _phases("build") as phase:
        result = build_engine(model, output, options, report=phase, calibration=spec if int8 else None)
    meta, built = result.meta, result.engine
    console.print(f"wrote {escape(str(output))} ({_size(output)}): {meta.precision}, TensorRT {built.tensorrt}, "
                  f"{escape(built.gpu)} (SM {built.compute_capability}), {built.fp32_layers} layers kept FP32"
                  + (f", calibration cache {escape(built.calibration_cache)}" if built.calibration_cache else ""),
                  soft_wrap=True)
    if result.accuracy:
        _accuracy_table(result.accuracy, f"INT8 engine vs FP32 ONNX Runtime on {result.accuracy.images} held-out images")
    _next(f"ctrt run {output} --source 0")


def _warn_int8_kernels(backend: Any) -> None:
    from .runtime.runner import int8_kernel_warning

    warning = int8_kernel_warning(backend)
    if warning:
        _warning(warning)


@command
def quantize(
    model: Annotated[Path, typer.Argument(help="an FP32 ONNX file from ctrt export")],
    calib_images: Annotated[Path, typer.Option(help="folder of calibration images, e.g. coco/val2017")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="default: export/<stem>_int8.onnx")] = None,
    calib_annotations: Annotated[Optional[Path], typer.Option(help="COCO instances JSON for those images")] = None,
    calib_count: Annotated[int, typer.Option(min=1, help="images drawn for calibration (seeded)")] = 500,
    held_out: Annotated[int, typer.Option(min=1, help="images kept out of calibration for the accuracy report")] = 50,
    method: Annotated[str, typer.Option(help="minmax, entropy or percentile")] = "minmax",
    seed: Annotated[int, typer.Option(help="seed of the image draw and the previous-frame jitter")] = 0,
    target: Annotated[str, typer.Option(help="tensorrt: symmetric INT8 that TensorRT 10/11 build (ONNX Runtime runs "
                                             "it too); cpu: fastest and most accurate on ONNX Runtime's x86 kernels")
                      ] = "tensorrt",
) -> None:
    """FP32 ONNX -> INT8 Q/DQ ONNX, for TensorRT 10/11 (explicit quantization) or ONNX Runtime on CPU."""
    from .artifacts import sidecar_path
    from .calibration.quantize import METHODS
    from .calibration.workflow import CalibrationSpec, quantize_model, report_path

    if method not in METHODS:
        raise CtrtError(f"--method {method!r}: choose {', '.join(METHODS)}")
    output = output or Path("export") / f"{model.stem}_int8.onnx"
    check_outputs({"--output": output, "its sidecar": sidecar_path(output), "its accuracy report": report_path(output)},
                  [*_sidecars(model), calib_annotations])
    spec = CalibrationSpec(calib_images, calib_annotations, calib_count, held_out, seed)
    with _phases("quantize") as phase:
        phase("preparing calibration data")
        meta, report, kept = quantize_model(model, output, spec, method, target, phase)
    how = "ONNX Runtime CPU kernels" if target == "cpu" else "Q/DQ arithmetic, as TensorRT computes it"
    _accuracy_table(report, f"INT8 Q/DQ vs FP32 on {report.images} held-out images ({how})")
    console.print(f"wrote {escape(str(output))} ({_size(output)}), {output.name}.json and "
                  f"{escape(report_path(output).name)}; {len(kept)} nodes kept in float", soft_wrap=True)
    _next(f"ctrt run {output} --source 0", f"ctrt bench {model} {output}",
          *([] if target == "cpu" else [f"ctrt build {output}"]))


@command
def doctor(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """What this machine has and lacks: TensorRT, CUDA, GPU, JetPack, ONNX Runtime providers, OpenCV video I/O."""
    import json

    from .doctor import as_json as doctor_json
    from .doctor import command_readiness, run_checks

    checks = run_checks()
    if as_json:
        console.print_json(json.dumps(doctor_json(checks)))
        return
    table = _titled("ctrt doctor")
    for column in ("", "component", "detail"):
        table.add_column(column)
    for check in checks:
        table.add_row("[green]ok[/]" if check.ok else "[yellow]--[/]", check.name, escape(check.detail))
    console.print(table)
    ready = command_readiness(checks)
    console.print("ready: " + ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in ready.items()))


@command
def selftest() -> None:
    """Export a small seeded model and compare ONNX Runtime, PyTorch and (where present) TensorRT FP32/FP16."""
    from .selftest import Result, run_selftest

    colors = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}

    def show(result: Result) -> None:
        console.print(f"[{colors[result.status]}]{result.status}[/] {result.step}: {escape(result.detail)}",
                      soft_wrap=True)

    with console.status("self-test running"):
        results = run_selftest(show)
    failed = [r for r in results if r.status == "FAIL"]
    skipped = [r for r in results if r.status == "SKIP"]
    console.print(f"selftest: {len(results) - len(failed) - len(skipped)} passed, {len(failed)} failed"
                  + (f", {len(skipped)} skipped" if skipped else ""))
    if failed:
        raise typer.Exit(1)


@command
def bench(
    models: Annotated[list[str], typer.Argument(help="one or more .onnx / .engine / .pth / triton://HOST:PORT/MODEL, compared side by side")],
    source: Annotated[Optional[str], typer.Option("-s", "--source", help="frames to track (default: a generated 1280x720 video)")] = None,
    frames: Annotated[int, typer.Option(min=1, help="distinct frames loaded from the source and cycled")] = 60,
    warmup: Annotated[float, typer.Option(min=0.0, help="warm-up in ms (trtexec --warmUp)")] = 200.0,
    duration: Annotated[float, typer.Option(callback=_positive, help="measuring time in s per loop, > 0 (trtexec --duration)")] = 3.0,
    iterations: Annotated[int, typer.Option(min=1, help="minimum measured iterations (trtexec --iterations)")] = 10,
    batch: Annotated[int, typer.Option(min=1, help="batch of the bare-model loop")] = 1,
    threads: Annotated[int, typer.Option(min=0, help="ONNX Runtime intra-op threads (0 = all cores)")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    input_size: Annotated[str, typer.Option(help="HxW for .pth checkpoints")] = "512x512",
    transfers: Annotated[bool, typer.Option("--transfers/--no-transfers", help="TensorRT bare loop: with or without host<->device copies (trtexec --noDataTransfers)")] = True,
    cuda_graph: Annotated[bool, typer.Option(help="TensorRT: replay the engine as a captured CUDA graph")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write every statistic to this file")] = None,
    plot_out: Annotated[Optional[Path], typer.Option("--plot", help="PNG: stacked stages and latency histogram")] = None,
    interleave: Annotated[bool, typer.Option(help="models take turns, one iteration each, so drifting machine load "
                                                  "hits all alike (trustworthy ratios on a shared machine)")] = False,
    streams: Annotated[Optional[str], typer.Option(help="stream counts, e.g. 1,2,4,8: N streams batched on one model "
                                                        "vs N single-stream loops in turns (one model)")] = None,
    rounds: Annotated[int, typer.Option(min=1, max=100, help="--streams: turns per count; the best is kept")] = 2,
    shm: Annotated[bool, typer.Option(help="Triton on this host: pass tensors through system shared memory")] = False,
) -> None:
    """Latency of every stage (pre-process, pre_hm, inference or H2D/compute/D2H, decode, track) and of the bare model."""
    from .bench import BenchSettings, bench_models, load_frames, plot, report
    from .bench_streams import parse_counts
    from .runtime.runner import open_backend
    from .runtime.sources import source_files
    from .sizes import parse_input_size

    check_outputs({"--json": json_out, "--plot": plot_out},
                  [*_sidecars(*map(_local, models)), *(source_files(source) if source else [])])
    counts = parse_counts(streams) if streams else None
    if counts and len(models) != 1:
        raise CtrtError("--streams benchmarks one model at a time")
    settings = BenchSettings(warmup, 1, duration, iterations, batch, not transfers)
    hw = parse_input_size(input_size)
    loaded = load_frames(source, frames)
    opened = []
    for path in models:
        opened.append((path, open_backend(path, device, threads, hw, cuda_graph=cuda_graph, shm=shm, notify=_warning)))
        _warn_int8_kernels(opened[-1][1])
    if counts:
        _bench_streams(models[0], opened[0][1], loaded, counts, rounds, json_out, plot_out)
        return
    with console.status(f"benchmarking {len(models)} model(s)" + (", interleaved" if interleave else "")):
        results = bench_models(opened, loaded, settings, interleave)
    data = report(results, settings, interleave)

    table = _titled(f"ctrt bench: median ms (p99) over {duration:g} s / >= {iterations} iterations per model, "
                        f"{loaded[0].shape[1]}x{loaded[0].shape[0]} frames")
    table.add_column("stage")
    for result in results:
        table.add_column(f"{Path(result.model).name}\n{escape(result.backend)}", justify="right")
    stage_names = list(dict.fromkeys(s for r in results for s in r.pipeline.stages))
    for stage in stage_names:
        table.add_row(stage.replace("_", "-"), *[r.pipeline.stages[stage].cell if stage in r.pipeline.stages else "-"
                                                 for r in results])
    table.add_row("end-to-end", *[r.pipeline.end_to_end.cell for r in results])
    first = results[0].pipeline.end_to_end.median
    table.add_row("pipeline FPS", *[f"{r.pipeline.fps:.2f}" for r in results])
    table.add_row("vs first (end-to-end)", *[f"{first / r.pipeline.end_to_end.median:.2f}x" for r in results])
    table.add_row(f"bare model, batch {batch}", *[r.bare.latency.cell for r in results])
    table.add_row("bare throughput FPS", *[f"{r.bare.throughput_fps:.2f}" for r in results])
    table.add_row("peak RSS MB", *[f"{r.peak_rss_mb:.0f}" for r in results])
    if any(r.device_memory_mb is not None for r in results):
        table.add_row("device memory MB", *["-" if r.device_memory_mb is None else f"{r.device_memory_mb:.1f}"
                                            for r in results])
    console.print(table)
    _write_results(data, json_out, plot_out, plot)


def _bench_streams(path: str, backend: Any, frames: list[Any], counts: list[int], rounds: int,
                   json_out: Optional[Path], plot_out: Optional[Path]) -> None:
    from .bench_streams import bench_streams, plot_streams

    with console.status(f"benchmarking {', '.join(map(str, counts))} streams, batched and sequential, in turns"), \
            backend:
        rows = bench_streams(backend, frames, counts, rounds)
    data = {"schema": 1, "ctrt_version": __version__, "model": str(path), "backend": backend.name,
            "frames_per_stream": len(frames), "rounds": rounds, "streams": [asdict(row) for row in rows]}
    table = _titled(f"ctrt bench --streams: {escape(Path(path).name)} on {escape(backend.name)}, {len(frames)} "
                        f"{frames[0].shape[1]}x{frames[0].shape[0]} frames per stream, best of {rounds}")
    for column in ("streams", "batched FPS", "sequential FPS", "batched / sequential", "batched p50 (p99) ms",
                   "sequential p50 (p99) ms", "batched ms/frame: wall, stages, infer"):
        table.add_column(column, justify="right")
    for row in rows:
        b, q = row.batched, row.sequential
        table.add_row(str(row.count), f"{b.fps:.2f}", f"{q.fps:.2f}", f"{row.speedup:.2f}x",
                      f"{b.latency.median:.0f} ({b.latency.p99:.0f})", f"{q.latency.median:.0f} ({q.latency.p99:.0f})",
                      f"{b.wall_ms_per_frame:.1f}, {b.stage_sum_ms_per_frame:.1f}, {b.infer_ms_per_frame:.1f}")
    console.print(table)
    _write_results(data, json_out, plot_out, plot_streams)


def _write_results(data: dict[str, Any], json_out: Optional[Path], plot_out: Optional[Path],
                   plot: Callable[[dict[str, Any], Path], None]) -> None:
    """A command's --json and --plot files (bench, eval)."""
    from .outputs import write_text_atomic

    if json_out:
        write_text_atomic(json_out, json.dumps(data, indent=2))
        console.print(f"wrote {escape(str(json_out))}", soft_wrap=True)
    if plot_out:
        plot(data, plot_out)
        console.print(f"wrote {escape(str(plot_out))}", soft_wrap=True)


@command
def make_data(
    kind: Annotated[str, typer.Argument(help="pedestrians (MOT gt only, for --tracker-only), demo-mot (demo-scene frames + MOT gt) or demo-coco (demo-scene images + COCO json)")],
    output: Annotated[Path, typer.Argument(help="a new folder")],
    count: Annotated[int, typer.Option(min=1, max=1000, help="sequences (MOT) or images (COCO)")] = 3,
    frames: Annotated[int, typer.Option(min=2, max=100000, help="frames per sequence")] = 300,
    size: Annotated[str, typer.Option(help="WxH of demo frames")] = "640x360",
    seed: Annotated[int, typer.Option(min=0, help="the first sequence's seed; the next ones count up")] = 0,
) -> None:
    """Make an evaluation set with exact ground truth (MOTChallenge or COCO format)."""
    from .eval.datasets import make_dataset
    from .sizes import parse_frame_size

    with console.status(f"writing {kind} to {escape(str(output))}"):
        make_dataset(kind, output, count, frames, parse_frame_size(size), seed)
    console.print(f"wrote {escape(str(output))}", soft_wrap=True)
    if kind == "pedestrians":
        _next(f"ctrt eval --tracker-only --mot {output} --tracker centertrack --tracker robust")
    elif kind == "demo-mot":
        _next(f"ctrt eval export/demo_256x256.onnx --mot {output} --classes all")
    else:
        _next(f"ctrt eval export/demo_256x256.onnx --coco {output}/annotations.json --images {output}/images")


def _delta(value: float, base: float, share: bool) -> str:
    shown = f"{value:.3f}" if share else f"{value:.0f}"
    if value == base:
        return shown
    return f"{shown} ({value - base:+.3f})" if share else f"{shown} ({value - base:+.0f})"


@command
def eval(
    models: Annotated[Optional[list[str]], typer.Argument(help="models to compare (.onnx, .engine, .pth, triton://); the first is the baseline")] = None,
    mot: Annotated[Optional[Path], typer.Option(help="MOTChallenge sequences: SEQ/img1 (or a video) + SEQ/gt/gt.txt")] = None,
    coco: Annotated[Optional[Path], typer.Option(help="COCO instances JSON: detection AP")] = None,
    images: Annotated[Optional[Path], typer.Option(help="with --coco: the images folder")] = None,
    tracker_only: Annotated[bool, typer.Option(help="--mot: feed noisy ground truth straight to the tracker (no model): association quality alone")] = False,
    tracker: Annotated[Optional[list[str]], typer.Option(help="tracker settings to compare: centertrack, robust, or options on a preset, e.g. max_age=30 or robust,low_thresh=0.1 (repeat)")] = None,
    classes: Annotated[str, typer.Option(help="--mot: classes tracked: person (COCO class 1), all, or numbers like 1,3")] = "person",
    k: Annotated[int, typer.Option("-k", "--topk", min=1, max=3840, help="detections kept per frame")] = 100,
    track_thresh: Annotated[float, typer.Option(min=0.0, max=1.0, help="score threshold for output and new tracks")] = 0.3,
    max_images: Annotated[Optional[int], typer.Option(min=1, help="--coco: the first N images (by id)")] = None,
    seed: Annotated[int, typer.Option(min=0, help="--tracker-only: seed of the detection noise")] = 0,
    offset_noise: Annotated[Optional[float], typer.Option(min=0.0, max=100.0, help="--tracker-only: std of the tracking offsets' error in px (default 1.5, a precise model): how a setting holds up with a less precise one")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="ONNX Runtime intra-op threads (0 = all cores)")] = 0,
    input_size: Annotated[str, typer.Option(help="HxW for .pth checkpoints")] = "512x512",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="every metric, per sequence and combined")] = None,
    plot_out: Annotated[Optional[Path], typer.Option("--plot", help="PNG: metrics per model and per sequence")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(help="--mot: a new folder for the tracker files, <entry>/data/<SEQ>.txt in MOTChallenge format")] = None,
) -> None:
    """Score models (or tracker settings) side by side: tracking with TrackEval (HOTA, MOTA, IDF1) or detection AP
    with pycocotools."""
    from .eval.evaluate import comparison, evaluate_mot, parse_classes
    from .eval.plots import plot_eval
    from .eval.mot import find_sequences
    from .eval.synthetic import DetectionNoise
    from .runtime.runner import open_backend
    from .sizes import parse_input_size

    models = models or []
    if (mot is None) == (coco is None):
        raise CtrtError("give --mot DIR (tracking) or --coco ANNOTATIONS.json --images DIR (detection)")
    if tracker_only and (models or coco):
        raise CtrtError("--tracker-only scores tracker settings on --mot ground truth, without models")
    if not tracker_only and not models:
        raise CtrtError("give one or more models to evaluate, or --tracker-only")
    if offset_noise is not None and not tracker_only:
        raise CtrtError("--offset-noise sets the noise of --tracker-only's detections; models make their own")
    check_outputs({"--json": json_out, "--plot": plot_out}, [*_sidecars(*map(_local, models)), coco])
    if save_dir is not None and save_dir.exists():
        raise CtrtError(f"--save-dir {save_dir} exists; give a new folder")
    hw = parse_input_size(input_size)

    def open_model(model: str) -> Any:
        backend = open_backend(model, device, threads, hw, notify=_warning)
        _model_note(backend.meta)
        return backend

    if coco is not None:
        _eval_coco(models, coco, images, max_images, k, open_model, json_out, plot_out)
        return
    assert mot is not None
    entries = comparison(models, tracker, track_thresh)
    sequences = find_sequences(mot)
    noise = DetectionNoise() if offset_noise is None else DetectionNoise(offset_noise_px=offset_noise)
    with console.status("evaluating") as status:
        result = evaluate_mot(sequences, entries, open_model, k, parse_classes(classes), noise=noise, seed=seed,
                              progress=lambda text: status.update(escape(text)))
    _mot_tables(result, len(sequences))
    data = {"schema": 1, "ctrt_version": __version__, "kind": "mot", "tracker_only": tracker_only,
            **({"detection_noise": asdict(noise), "noise_seed": seed} if tracker_only else {}),
            "sequences": result.sequences, "entries": [{"label": e.label, "model": e.model,
                                                        "tracker": asdict(e.tracker)} for e in entries],
            "scores": result.scores}
    if save_dir is not None:
        from .outputs import atomic_folder

        with atomic_folder(save_dir) as folder:
            for index, entry in enumerate(entries):  # TrackEval's layout: TRACKERS_FOLDER/<tracker>/data/<seq>.txt
                (folder / f"{index}" / "data").mkdir(parents=True)
                for name, text in result.files[entry.label].items():
                    (folder / f"{index}" / "data" / f"{name}.txt").write_text(text)
            (folder / "entries.json").write_text(json.dumps(data["entries"], indent=1))
        console.print(f"wrote the tracker files to {escape(str(save_dir))}/<entry>/data/<sequence>.txt, TrackEval's "
                      "layout (entries.json says which entry is which)", soft_wrap=True)
    _write_results(data, json_out, plot_out, plot_eval)


def _mot_tables(result: Any, sequences: int) -> None:
    from .eval.scores import COMBINED, COUNTS, METRICS

    base = result.scores[result.labels[0]][COMBINED]
    table = _titled(f"TrackEval, {sequences} sequence(s) combined; (deltas vs the first)")
    table.add_column("")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for label in result.labels:
        row = result.scores[label][COMBINED]
        table.add_row(escape(label), *[_delta(row[m], base[m], m not in COUNTS) for m in METRICS])
    console.print(table)
    if sequences > 1:
        per = _titled("per sequence: IDF1 / MOTA / HOTA")
        per.add_column("")
        for name in result.sequences:
            per.add_column(escape(name), justify="right")
        for label in result.labels:
            scores = result.scores[label]
            per.add_row(escape(label), *[f"{scores[n]['IDF1']:.3f} / {scores[n]['MOTA']:.3f} / {scores[n]['HOTA']:.3f}"
                                          for n in result.sequences])
        console.print(per)


def _eval_coco(models: list[str], coco: Path, images: Optional[Path], max_images: Optional[int], k: int,
               open_model: Callable[[str], Any], json_out: Optional[Path], plot_out: Optional[Path]) -> None:
    from .eval.coco import AP_NAMES, average_precision, detect, read_coco
    from .eval.plots import plot_eval

    if images is None:
        raise CtrtError("--coco needs --images DIR, the folder of the annotated images")
    chosen = read_coco(coco, images, max_images)
    scores = {}
    for model in models:
        with open_model(model) as backend, console.status(f"{escape(Path(model).name)}: detecting") as status:
            results = detect(backend, chosen, k, lambda i, n: status.update(f"{escape(Path(model).name)}: image {i}/{n}"))
            scores[model] = average_precision(chosen, results)
    table = _titled(f"pycocotools bbox AP on {len(chosen.images)} images; (deltas vs the first)")
    table.add_column("")
    for name in AP_NAMES:
        table.add_column(name, justify="right")
    base = scores[models[0]]
    for model in models:
        cells = []
        for name in AP_NAMES:
            value, first = scores[model][name], base[name]
            cells.append("-" if value is None else _delta(value, first, True) if first is not None else f"{value:.3f}")
        table.add_row(escape(Path(model).name), *cells)
    console.print(table)
    _write_results({"schema": 1, "ctrt_version": __version__, "kind": "coco", "images": len(chosen.images),
                    "annotations": str(coco), "scores": scores}, json_out, plot_out, plot_eval)


@command
def triton(
    model: Annotated[Path, typer.Argument(help="an .onnx from ctrt export/quantize or an engine from ctrt build")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the model repository (created, or an existing one to add to)")],
    name: Annotated[str, typer.Option(help="the model's name on the server (a folder in the repository)")] = "ctrt",
    backend: Annotated[str, typer.Option(help="ONNX: onnxruntime (Triton's ONNX Runtime backend) or python (ONNX Runtime in Triton's Python backend: servers without GPU or ONNX Runtime backend); engines: tensorrt_plan always")] = "auto",
    max_batch: Annotated[Optional[int], typer.Option(min=0, max=1024, help="largest batch the server gathers from requests (default 8 where the model takes any batch; 0: no batching)")] = None,
    instances: Annotated[int, typer.Option(min=1, max=64, help="model instances per device")] = 1,
    queue_delay_us: Annotated[int, typer.Option(min=0, max=10_000_000, help="how long the dynamic batcher waits to fill a batch")] = 500,
    kind: Annotated[str, typer.Option(help="where instances run: auto (GPU, CPU for --backend python), cpu or gpu")] = "auto",
    ort_tensorrt: Annotated[bool, typer.Option(help="onnxruntime backend: TensorRT execution accelerator")] = False,
    fp16: Annotated[bool, typer.Option(help="with --ort-tensorrt: FP16 engines")] = False,
) -> None:
    """Write a Triton Inference Server model repository for a model: config, model file, ctrt metadata."""
    from .serving.repository import RepositoryOptions, write_repository

    if fp16 and not ort_tensorrt:
        raise CtrtError("--fp16 applies with --ort-tensorrt; for an FP16 model export or build one")
    options = RepositoryOptions(name, backend, max_batch, instances, queue_delay_us, kind, ort_tensorrt, fp16)
    repository = write_repository(model, output, options)
    batching = (f"dynamic batching up to {repository.max_batch}" if repository.max_batch
                else "no server-side batching (the model takes a fixed batch)")
    console.print(f"wrote {escape(str(repository.model_dir))}: {repository.platform}, {batching}, "
                  f"{instances} instance(s)", soft_wrap=True)
    _next(f"ctrt serve {output}    (or NVIDIA's Triton container: see README)",
          f"ctrt run triton://127.0.0.1:8001/{name} --source 0")


@command
def serve(
    repository: Annotated[Path, typer.Argument(help="a model repository written by ctrt triton")],
    env: Annotated[Path, typer.Option(envvar="CTRT_TRITON_ENV", help="environment holding nvidia-pytriton, onnxruntime and numpy<2 (make triton-env)")] = Path(".venv-triton"),
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    grpc_port: Annotated[int, typer.Option(min=1, max=65535, help="gRPC port (triton://)")] = 8001,
    http_port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port (http://, health, statistics)")] = 8000,
    metrics_port: Annotated[int, typer.Option(min=1, max=65535, help="Prometheus metrics port")] = 8002,
    log: Annotated[Optional[Path], typer.Option(help="append the server's log to this file")] = None,
) -> None:
    """Run Triton Inference Server here, without a container, from the nvidia-pytriton wheel (Python-backend models;
    on GPU servers use NVIDIA's container). Ctrl-C or SIGTERM stops it."""
    from .serving.local_server import LocalTriton, Ports

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
        _error(f"tritonserver exited with code {server.exit_code}" + (f"; its log: {log}" if log else ""))
        raise typer.Exit(1)
    except KeyboardInterrupt as exc:  # the normal way a server ends, under systemd or docker too
        console.print(f"stopping tritonserver ({exc})")
    finally:
        server.stop()


@command
def inspect(path: Annotated[Path, typer.Argument(help="a checkpoint (.pth) or an exported model (.onnx)")]) -> None:
    """Show what ctrt infers from a checkpoint or reads from an ONNX file."""
    from .inspection import describe

    table = Table(show_header=False, title=str(path))
    for key, value in describe(path):
        table.add_row(key, value)
    console.print(table)


@command
def version() -> None:
    """Print the ctrt version."""
    console.print(f"ctrt {__version__}")


def main() -> None:
    """The console script: like ``app()``, but a usage mistake (unknown option, value out of range) is one
    ``error:`` line naming the command, as every other user error is."""
    if not sys.argv[1:]:
        sys.argv.append("--help")
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        _error(f"{where}{exc.format_message()}{hint}")
        code = exc.exit_code
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
