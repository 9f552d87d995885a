"""``ctrt bench``: trtexec-style latency statistics for every stage of the tracker, for several models side by side.

Each model runs (1) the full per-frame pipeline over real frames and (2) the bare model on fixed tensors. Both loops
warm up for ``warmup_ms`` and at least ``warmup_iterations``, then measure for ``duration_s`` and at least
``min_iterations`` (trtexec's --warmUp/--duration/--iterations). Host stages use a monotonic clock; on TensorRT the
copies and the engine are timed with CUDA events.

JSON schema (``"schema": 1``)::

    {"schema": 1, "ctrt_version": str, "settings": {...},
     "models": [{"model": str, "backend": str, "precision": str, "input_size": [H, W], "peak_rss_mb": float,
                 "device_memory_mb": float | null (TensorRT: I/O buffers + engine activations),
                 "pipeline": {"frames": int, "stages": {stage: STATS}, "end_to_end": STATS, "fps": float,
                              "end_to_end_samples_ms": [float]},
                 "bare": {"batch": int, "latency": STATS, "throughput_fps": float}}]}
    STATS = {"count", "min", "mean", "median", "p90", "p95", "p99", "max"} in milliseconds (count: samples);
    percentiles use numpy's linear method.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import CtrtError
from .export.parity import random_feed
from .runtime.backends.base import Backend
from .runtime.pipeline import TrackingPipeline

PERCENTILES = {"median": 50, "p90": 90, "p95": 95, "p99": 99}
DEVICE_STAGES = ("h2d", "compute", "d2h")


@dataclass(frozen=True)
class BenchSettings:
    warmup_ms: float = 200.0
    warmup_iterations: int = 1
    duration_s: float = 3.0
    min_iterations: int = 10
    batch: int = 1
    no_transfers: bool = False


def summarize(samples_ms: np.ndarray | list[float]) -> dict[str, float]:
    samples = np.asarray(samples_ms, np.float64)
    if samples.size == 0:
        raise ValueError("no samples")
    stats = {"count": float(samples.size), "min": float(samples.min()), "mean": float(samples.mean())}
    stats.update({name: float(np.percentile(samples, q)) for name, q in PERCENTILES.items()})
    stats["max"] = float(samples.max())
    return stats


def timed_loop(step: Callable[[int], object], settings: BenchSettings,
               clock: Callable[[], float] = time.perf_counter) -> tuple[list[float], float]:
    """Per-iteration ms after the warm-up, and the measured wall time in seconds."""
    index = 0
    start = clock()
    while (clock() - start) * 1e3 < settings.warmup_ms or index < settings.warmup_iterations:
        step(index)
        index += 1
    samples: list[float] = []
    begin = clock()
    while clock() - begin < settings.duration_s or len(samples) < settings.min_iterations:
        t0 = clock()
        step(index)
        samples.append((clock() - t0) * 1e3)
        index += 1
    return samples, clock() - begin


def bench_pipeline(backend: Backend, frames: list[np.ndarray], settings: BenchSettings) -> dict[str, Any]:
    pipeline = TrackingPipeline(backend)
    device: dict[str, list[float]] = {name: [] for name in DEVICE_STAGES}
    measuring = {"on": False}

    def step(index: int) -> None:
        pipeline(frames[index % len(frames)])
        last = getattr(backend, "last_ms", None)
        if measuring["on"] and last:
            for name in DEVICE_STAGES:
                device[name].append(last[name])

    # Warm-up samples are dropped: StageTimes keeps everything, so remember where measuring starts.
    warmup = BenchSettings(settings.warmup_ms, settings.warmup_iterations, 0.0, 0)
    timed_loop(step, warmup)
    first = pipeline.times.count
    measuring["on"] = True
    end_to_end, wall = timed_loop(step, BenchSettings(0.0, 0, settings.duration_s, settings.min_iterations))
    stage_samples = pipeline.times.samples[first:]
    stages = {name: summarize(stage_samples[:, i]) for i, name in enumerate(pipeline.times.stages)}
    stages.update({name: summarize(values) for name, values in device.items() if values})
    return {"frames": len(end_to_end), "stages": stages, "end_to_end": summarize(end_to_end),
            "fps": len(end_to_end) / wall, "end_to_end_samples_ms": end_to_end}


def bare_feed(backend: Backend, batch: int) -> dict[str, np.ndarray]:
    meta = backend.meta
    if meta.batch not in (0, batch):
        raise CtrtError(f"--batch {batch}: this model has a fixed batch of {meta.batch} (export with --dynamic-batch)")
    source = meta.extra.get("source_size")
    return random_feed(meta.inputs, batch, *meta.input_size, tuple(source) if source else None)


def bench_bare(backend: Backend, settings: BenchSettings) -> dict[str, Any]:
    feed = bare_feed(backend, settings.batch)
    run: Callable[[], object] = backend.run_on_device if settings.no_transfers and hasattr(backend, "run_on_device") \
        else (lambda: backend(feed))
    if settings.no_transfers and not hasattr(backend, "run_on_device"):
        raise CtrtError("--no-transfers applies to TensorRT engines only")
    run()  # uploads once, so --no-transfers times the engine on resident inputs
    samples, wall = timed_loop(lambda _: run(), settings)
    return {"batch": settings.batch, "latency": summarize(samples),
            "throughput_fps": settings.batch * len(samples) / wall}


def bench_model(path: Path, backend: Backend, frames: list[np.ndarray], settings: BenchSettings) -> dict[str, Any]:
    with backend:
        pipeline = bench_pipeline(backend, frames, settings)
        bare = bench_bare(backend, settings)
    device_bytes = getattr(backend, "device_bytes", None)
    return {"model": str(path), "backend": backend.name, "precision": backend.meta.precision,
            "input_size": list(backend.meta.input_size), "pipeline": pipeline, "bare": bare,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "device_memory_mb": None if device_bytes is None else device_bytes / 2**20}


def report(results: list[dict[str, Any]], settings: BenchSettings) -> dict[str, Any]:
    return {"schema": 1, "ctrt_version": __version__, "settings": settings.__dict__, "models": results}


def plot(report_data: dict[str, Any], path: Path) -> None:
    """Stacked per-stage medians per model, and the end-to-end latency distribution."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CtrtError("--plot needs matplotlib: pip install 'ctrt[plot]'") from None
    from .artifacts import atomic_output

    models = report_data["models"]
    names = [Path(m["model"]).name for m in models]
    stages = [s for s in ("preprocess", "pre_hm", "h2d", "infer", "compute", "d2h", "decode", "track")
              if any(s in m["pipeline"]["stages"] for m in models)]
    figure, (bars, spread) = plt.subplots(1, 2, figsize=(12, 4.5))
    bottom = np.zeros(len(models))
    for stage in stages:
        values = np.array([m["pipeline"]["stages"].get(stage, {}).get("median", 0.0) for m in models])
        if stage == "infer" and any("compute" in m["pipeline"]["stages"] for m in models):
            values = np.array([0.0 if "compute" in m["pipeline"]["stages"] else v for m, v in zip(models, values)])
        bars.bar(names, values, bottom=bottom, label=stage)
        bottom += values
    bars.set_ylabel("median ms per frame")
    bars.set_title("pipeline stages")
    bars.legend(fontsize=8)
    bins = np.histogram_bin_edges(np.concatenate([m["pipeline"]["end_to_end_samples_ms"] for m in models]), 30)
    for model, name in zip(models, names):
        spread.hist(model["pipeline"]["end_to_end_samples_ms"], bins=bins, alpha=0.5, label=name)
    spread.set_xlabel("end-to-end ms per frame")
    spread.set_ylabel("frames")
    spread.set_title("latency histogram")
    spread.legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
