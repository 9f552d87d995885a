"""``ctrt bench``: trtexec-style latency statistics for every stage of the tracker, for several models side by side.

Each model runs (1) the full per-frame pipeline over real frames and (2) the bare model on fixed tensors. Both loops
warm up for ``warmup_ms`` and at least ``warmup_iterations``, then measure for ``duration_s`` and at least
``min_iterations`` (trtexec's --warmUp/--duration/--iterations). Host stages use a monotonic clock; on TensorRT the
copies and the engine are timed with CUDA events. With ``interleave`` the models take turns, one iteration each, in
both loops, so load that drifts during the run (a shared machine, thermal throttling) hits every model alike and
the ratios between them hold; otherwise each model runs its loops alone, one model after the other.

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
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .version import __version__
from .errors import CtrtError
from .export.parity import random_feed
from .runtime.backends.base import Backend
from .runtime.decode import TOPK
from .runtime.pipeline import Session

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


@dataclass(frozen=True)
class Stats:
    """Milliseconds over ``count`` samples; percentiles by numpy's linear method."""

    count: int
    min: float
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float

    @property
    def cell(self) -> str:
        return f"{self.median:.2f} ({self.p99:.2f})"


@dataclass(frozen=True)
class PipelineResult:
    frames: int
    stages: dict[str, Stats]
    end_to_end: Stats
    fps: float
    end_to_end_samples_ms: list[float]


@dataclass(frozen=True)
class BareResult:
    batch: int
    latency: Stats
    throughput_fps: float


@dataclass(frozen=True)
class ModelResult:
    model: str
    backend: str
    precision: str
    input_size: list[int]
    pipeline: PipelineResult
    bare: BareResult
    peak_rss_mb: float
    device_memory_mb: float | None  # TensorRT: I/O buffers + engine activations


def summarize(samples_ms: np.ndarray | list[float]) -> Stats:
    samples = np.asarray(samples_ms, np.float64)
    if samples.size == 0:
        raise ValueError("no samples")
    percentiles = {name: float(np.percentile(samples, q)) for name, q in PERCENTILES.items()}
    return Stats(count=int(samples.size), min=float(samples.min()), mean=float(samples.mean()),
                 max=float(samples.max()), **percentiles)


def timed_loops(steps: list[Callable[[int], object]], settings: BenchSettings,
                clock: Callable[[], float] = time.perf_counter) -> list[list[float]]:
    """Per-iteration ms of each step after its own warm-up; several steps run in turns, one iteration each, until
    every step has measured ``duration_s`` of its own time and ``min_iterations``."""
    indices = []
    for step in steps:
        index = 0
        start = clock()
        while (clock() - start) * 1e3 < settings.warmup_ms or index < settings.warmup_iterations:
            step(index)
            index += 1
        indices.append(index)
    samples: list[list[float]] = [[] for _ in steps]
    while (min(sum(s) for s in samples) < settings.duration_s * 1e3
           or min(len(s) for s in samples) < settings.min_iterations):
        for i, step in enumerate(steps):
            t0 = clock()
            step(indices[i])
            samples[i].append((clock() - t0) * 1e3)
            indices[i] += 1
    return samples


class PipelineLoop:
    """The full per-frame pipeline over cycled frames; statistics cover the frames after ``begin``."""

    def __init__(self, backend: Backend, frames: list[np.ndarray]) -> None:
        self.backend, self.frames = backend, frames
        self.session = Session(backend, keep_times=None)  # every sample, for percentiles
        self.device: dict[str, list[float]] = {name: [] for name in DEVICE_STAGES}
        self.first: int | None = None

    def step(self, index: int) -> None:
        self.session.update(self.frames[index % len(self.frames)])
        last = self.backend.last_ms
        if self.first is not None and last:
            for name in DEVICE_STAGES:
                self.device[name].append(last[name])

    def begin(self) -> None:
        # Warm-up samples are dropped: remember where measuring starts.
        self.first = self.session.times.count

    def result(self, end_to_end: list[float]) -> PipelineResult:
        stage_samples = self.session.times.samples[self.first:]
        stages = {name: summarize(stage_samples[:, i]) for i, name in enumerate(self.session.times.stages)}
        stages.update({name: summarize(values) for name, values in self.device.items() if values})
        return PipelineResult(len(end_to_end), stages, summarize(end_to_end), len(end_to_end) / (sum(end_to_end) / 1e3),
                              end_to_end)


def load_frames(source: str | None, count: int) -> list[np.ndarray]:
    """Up to ``count`` frames of ``source`` (a file, folder, camera...), held in memory so decoding is not timed;
    without a source, a generated 1280x720 video (at most 30 distinct frames, cycled by the loops)."""
    import tempfile

    from .demo import make_demo_video
    from .runtime.sources import FrameSource

    with tempfile.TemporaryDirectory(prefix="ctrt-bench-") as tmp:
        spec = source or str(make_demo_video(Path(tmp) / "bench.mp4", frames=min(count, 30), size=(1280, 720)))
        frames = []
        for frame in FrameSource(spec, reconnects=0):
            frames.append(frame)
            if len(frames) == count:
                break
    if not frames:
        raise CtrtError(f"no frame could be read from {spec}")
    return frames


def bare_feed(backend: Backend, batch: int) -> dict[str, np.ndarray]:
    meta = backend.meta
    if meta.batch not in (0, batch):
        raise CtrtError(f"--batch {batch}: this model has a fixed batch of {meta.batch} (export with --dynamic-batch)")
    return random_feed(meta.inputs, batch, *meta.input_size, meta.graph.source_size if meta.graph else None,
                       topk=(meta.graph.topk if meta.graph else None) or TOPK)


def bare_runner(backend: Backend, settings: BenchSettings) -> Callable[[int], object]:
    """One call of the bare model per step (on resident inputs with ``no_transfers``)."""
    feed = bare_feed(backend, settings.batch)
    resident = backend.run_on_device
    if settings.no_transfers and resident is None:
        raise CtrtError("--no-transfers applies to TensorRT engines only")

    def call() -> object:
        return backend(feed)

    run: Callable[[], object] = resident if settings.no_transfers and resident is not None else call
    run()  # uploads once, so --no-transfers times the engine on resident inputs
    return lambda _index: run()


def bench_group(models: list[tuple[str, Backend]], frames: list[np.ndarray],
                settings: BenchSettings) -> list[ModelResult]:
    """The pipeline loop, then the bare loop, of ``models`` in turns (one model: on its own)."""
    loops = [PipelineLoop(backend, frames) for _, backend in models]
    timed_loops([loop.step for loop in loops], BenchSettings(settings.warmup_ms, settings.warmup_iterations, 0.0, 0))
    for loop in loops:
        loop.begin()
    measure = BenchSettings(0.0, 0, settings.duration_s, settings.min_iterations)
    measured = timed_loops([loop.step for loop in loops], measure)
    pipelines = [loop.result(samples) for loop, samples in zip(loops, measured)]
    runs = [bare_runner(backend, settings) for _, backend in models]
    bare = timed_loops(runs, settings)
    results = []
    for (path, backend), pipeline, samples in zip(models, pipelines, bare):
        device_bytes = backend.device_bytes
        bare_result = BareResult(settings.batch, summarize(samples), settings.batch * len(samples) / (sum(samples) / 1e3))
        results.append(ModelResult(
            str(path), backend.name, backend.meta.precision, list(backend.meta.input_size), pipeline, bare_result,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            None if device_bytes is None else device_bytes / 2**20))
    return results


def bench_models(models: list[tuple[str, Backend]], frames: list[np.ndarray], settings: BenchSettings,
                 interleave: bool = False) -> list[ModelResult]:
    groups = [models] if interleave else [[model] for model in models]
    results = []
    for group in groups:
        with ExitStack() as stack:
            for _, backend in group:
                stack.enter_context(backend)
            results.extend(bench_group(group, frames, settings))
    return results


def report(results: list[ModelResult], settings: BenchSettings, interleave: bool = False) -> dict[str, Any]:
    """The JSON document (schema above)."""
    return {"schema": 1, "ctrt_version": __version__, "settings": {**asdict(settings), "interleave": interleave},
            "models": [asdict(result) for result in results]}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, or one line saying how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CtrtError("--plot needs matplotlib: pip install 'ctrt[plot]'") from None
    return plt


def plot(report_data: dict[str, Any], path: Path) -> None:
    """Stacked per-stage medians per model, and the end-to-end latency distribution."""
    from .outputs import atomic_output

    plt = pyplot()

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
