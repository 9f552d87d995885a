"""The commands that measure and check a machine: doctor, selftest, bench, version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ..errors import CtrtError
from ..options import DAY_S
from ..outputs import check_outputs
from ..version import __version__
from dataclasses import asdict

from .app import command, console, notes, positive, sidecars, local, titled, write_results


@command(example="ctrt doctor --json")
def doctor(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """What this machine has and lacks: TensorRT, CUDA, GPU, JetPack, ONNX Runtime providers, OpenCV video I/O."""
    import json

    from ..doctor import as_json as doctor_json
    from ..doctor import command_readiness, run_checks

    checks = run_checks()
    if as_json:
        console.print_json(json.dumps(doctor_json(checks)))
        return
    table = titled("ctrt doctor")
    for column in ("", "component", "detail"):
        table.add_column(column)
    for check in checks:
        table.add_row("[green]ok[/]" if check.ok else "[yellow]--[/]", check.name, escape(check.detail))
    console.print(table)
    ready = command_readiness(checks)
    console.print("ready: " + ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in ready.items()))


@command(example="ctrt selftest")
def selftest() -> None:
    """Export a small seeded model and compare ONNX Runtime, PyTorch and (where present) TensorRT FP32/FP16."""
    from ..selftest import Result, run_selftest

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


@command(example="ctrt bench engines/m_fp16.engine export/m.onnx --interleave")
def bench(
    models: Annotated[list[str], typer.Argument(help="one or more .onnx / .engine / .pth / triton://HOST:PORT/MODEL, compared side by side")],
    source: Annotated[Optional[str], typer.Option("-s", "--source", rich_help_panel="Sources", help="frames to track (default: a generated 1280x720 video)")] = None,
    frames: Annotated[int, typer.Option(min=1, max=10_000, rich_help_panel="Sources", help="distinct frames loaded from the source and cycled")] = 60,
    warmup: Annotated[float, typer.Option(min=0.0, max=600_000.0, rich_help_panel="Measuring", help="warm-up in ms (trtexec --warmUp)")] = 200.0,
    duration: Annotated[float, typer.Option(callback=positive, max=float(DAY_S), rich_help_panel="Measuring", help="measuring time in s per loop, > 0 (trtexec --duration)")] = 3.0,
    iterations: Annotated[int, typer.Option(min=1, max=10_000_000, rich_help_panel="Measuring", help="minimum measured iterations (trtexec --iterations)")] = 10,
    batch: Annotated[int, typer.Option(min=1, max=256, rich_help_panel="Measuring", help="batch of the bare-model loop")] = 1,
    threads: Annotated[int, typer.Option(min=0, rich_help_panel="Model and device", help="ONNX Runtime intra-op threads (0 = all cores)")] = 0,
    device: Annotated[str, typer.Option(rich_help_panel="Model and device", help="auto, cpu, cuda")] = "auto",
    input_size: Annotated[Optional[str], typer.Option(rich_help_panel="Model and device", help="HxW for .pth checkpoints (default 512x512)")] = None,
    transfers: Annotated[bool, typer.Option("--transfers/--no-transfers", rich_help_panel="Measuring", help="TensorRT bare loop: with or without host<->device copies (trtexec --noDataTransfers)")] = True,
    cuda_graph: Annotated[bool, typer.Option(rich_help_panel="Measuring", help="TensorRT: replay the engine as a captured CUDA graph")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", rich_help_panel="Outputs", help="write every statistic to this file")] = None,
    plot_out: Annotated[Optional[Path], typer.Option("--plot", rich_help_panel="Outputs", help="PNG: stacked stages and latency histogram")] = None,
    interleave: Annotated[bool, typer.Option(rich_help_panel="Measuring", help="models take turns, one iteration each, so drifting machine load "
                                                  "hits all alike (trustworthy ratios on a shared machine)")] = False,
    streams: Annotated[Optional[str], typer.Option(rich_help_panel="Measuring", help="stream counts, e.g. 1,2,4,8: N streams batched on one model "
                                                        "vs N single-stream loops in turns (one model)")] = None,
    rounds: Annotated[int, typer.Option(min=1, max=100, rich_help_panel="Measuring", help="--streams: turns per count; the best is kept")] = 2,
    shm: Annotated[bool, typer.Option(rich_help_panel="Triton", help="Triton on this host: pass tensors through system shared memory")] = False,
    transport: Annotated[Optional[str], typer.Option(rich_help_panel="Triton", help="a stateful Triton model (ctrt triton --stateful): send frames raw (uint8, default) or as jpeg[:QUALITY] (1-100, default 90)")] = None,
) -> None:
    """Latency of every stage (pre-process, pre_hm, inference or H2D/compute/D2H, decode, track) and of the bare model."""
    from ..bench import BenchSettings, bench_models, load_frames, plot, report
    from ..bench_streams import parse_counts
    from ..api import load
    from ..runtime.sources import source_files

    check_outputs({"--json": json_out, "--plot": plot_out},
                  [*sidecars(*map(local, models)), *(source_files(source) if source else [])])
    counts = parse_counts(streams) if streams else None
    if counts and len(models) != 1:
        raise CtrtError("--streams benchmarks one model at a time")
    settings = BenchSettings(warmup, 1, duration, iterations, batch, not transfers)
    loaded = load_frames(source, frames)
    opened = []
    for path in models:
        model = load(path, device=device, threads=threads, input_size=input_size, cuda_graph=cuda_graph, shm=shm,
                     transport=transport)
        notes(model.notes)
        opened.append((path, model.backend))
    if counts:
        _bench_streams(models[0], opened[0][1], loaded, counts, rounds, json_out, plot_out)
        return
    with console.status(f"benchmarking {len(models)} model(s)" + (", interleaved" if interleave else "")):
        results = bench_models(opened, loaded, settings, interleave)
    data = report(results, settings, interleave)

    table = titled(f"ctrt bench: median ms (p99) over {duration:g} s / >= {iterations} iterations per model, "
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
    write_results(data, json_out, plot_out, plot)


def _bench_streams(path: str, backend: Any, frames: list[Any], counts: list[int], rounds: int,
                   json_out: Optional[Path], plot_out: Optional[Path]) -> None:
    from ..bench_streams import bench_streams, plot_streams

    with console.status(f"benchmarking {', '.join(map(str, counts))} streams, batched and sequential, in turns"), \
            backend:
        rows = bench_streams(backend, frames, counts, rounds)
    data = {"schema": 1, "ctrt_version": __version__, "model": str(path), "backend": backend.name,
            "frames_per_stream": len(frames), "rounds": rounds, "streams": [asdict(row) for row in rows]}
    table = titled(f"ctrt bench --streams: {escape(Path(path).name)} on {escape(backend.name)}, {len(frames)} "
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
    write_results(data, json_out, plot_out, plot_streams)

