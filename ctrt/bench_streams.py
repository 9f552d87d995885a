"""``ctrt bench --streams``: N streams batched on one model against N single-stream loops taking turns.

For each N, both ways track the same frames (held in memory, so video decoding is not what is timed), in turns
(batched, then sequential, for every N), so machine load that drifts hits both alike:
- batched: the scheduler with N streams (one batched call per lane and tick, two lanes overlapping host work with
  inference); latency is capture (the frame handed to the stream) to tracks;
- sequential: N ``Session`` s, one frame of each stream in turn; a frame's latency runs from the start of
  its round (when all N frames are available) to its tracks, as N cameras served one by one would see it.
Aggregate throughput is frames of all streams per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bench import Stats, summarize
from .errors import CtrtError
from .runtime.backends.base import Backend
from .runtime.pipeline import Session
from .runtime.sources import FrameSource
from .runtime.reports import RunReport
from .runtime.scheduler import Stream, schedule


class MemorySource(FrameSource):
    """Frames already decoded, served like a file (every frame, in order)."""

    def __init__(self, frames: list[np.ndarray], name: str) -> None:
        # No super().__init__: there is nothing to open; these are the attributes the stream loop reads.
        self.spec, self.frames, self.kind = name, frames, "memory"
        self.live, self.fps, self.total = False, 30.0, len(frames)
        self.skipped, self.reconnected, self.lost, self.reconnects = 0, 0, False, 0
        self.capture, self.images = None, []
        self.state, self.since, self.down_s, self.attempt, self.comebacks = "live", 0.0, 0.0, 0, 0

    def read_frames(self, stopped: Callable[[], bool] = lambda: False) -> Iterator[np.ndarray]:
        yield from self.frames

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class SequentialRun:
    fps: float  # frames of all streams per second
    latency: Stats
    wall_ms_per_frame: float


@dataclass(frozen=True)
class BatchedRun(SequentialRun):
    model_calls: int
    stage_sum_ms_per_frame: float
    infer_ms_per_frame: float


@dataclass(frozen=True)
class StreamsRow:
    count: int
    batched: BatchedRun
    sequential: SequentialRun
    speedup: float  # batched / sequential throughput


def batched(backend: Backend, frames: list[np.ndarray], count: int) -> BatchedRun:
    streams = [Stream(f"s{i}", MemorySource(frames, f"s{i}"), [], "none") for i in range(count)]
    result = RunReport([])
    for _ in schedule(backend, streams, result, overlap=True):
        pass
    latency = [v for s in result.streams for v in s.latency_ms]
    stage_sum = sum(np.mean([s.stage_ms[name] for s in result.streams]) for name in result.streams[0].stage_ms)
    return BatchedRun(result.frames / result.seconds, summarize(latency), 1e3 * result.seconds / result.frames,
                      result.batches, float(stage_sum), float(np.mean([s.stage_ms["infer"] for s in result.streams])))


def sequential(backend: Backend, frames: list[np.ndarray], count: int) -> SequentialRun:
    if backend.meta.batch not in (0, 1):
        raise CtrtError("--streams compares with single-stream loops: give a model with batch 1 or a dynamic batch")
    sessions = [Session(backend) for _ in range(count)]
    latency = []
    start = time.perf_counter()
    for frame in frames:
        round_start = time.perf_counter()
        for session in sessions:
            session.update(frame)
            latency.append((time.perf_counter() - round_start) * 1e3)
    seconds = time.perf_counter() - start
    return SequentialRun(count * len(frames) / seconds, summarize(latency), 1e3 * seconds / (count * len(frames)))


def bench_streams(backend: Backend, frames: list[np.ndarray], counts: list[int], rounds: int = 1) -> list[StreamsRow]:
    """Per N: batched and sequential results (the best of ``rounds`` turns by throughput), and their ratio."""
    batched(backend, frames[:2], 1)  # warm-up: first-call allocations are nobody's cost
    best_batched: dict[int, BatchedRun] = {}
    best_sequential: dict[int, SequentialRun] = {}
    for _ in range(rounds):
        for count in counts:
            run = batched(backend, frames, count)
            if count not in best_batched or run.fps > best_batched[count].fps:
                best_batched[count] = run
            alone = sequential(backend, frames, count)
            if count not in best_sequential or alone.fps > best_sequential[count].fps:
                best_sequential[count] = alone
    return [StreamsRow(count, best_batched[count], best_sequential[count],
                       best_batched[count].fps / best_sequential[count].fps) for count in counts]


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or max(counts) > 64:
        raise CtrtError(f"--streams {text!r}: expected stream counts from 1 to 64, such as 1,2,4,8")
    return counts


def plot_streams(data: dict[str, Any], path: Path) -> None:
    """Aggregate throughput and median latency against the number of streams, batched and sequential."""
    from .bench import pyplot
    from .outputs import atomic_output

    plt = pyplot()
    rows = data["streams"]
    counts = [r["count"] for r in rows]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 4))
    for mode in ("batched", "sequential"):
        throughput.plot(counts, [r[mode]["fps"] for r in rows], marker="o", label=mode)
        latency.plot(counts, [r[mode]["latency"]["median"] for r in rows], marker="o", label=mode)
    throughput.set(xlabel="streams", ylabel="frames/s, all streams", title="aggregate throughput")
    latency.set(xlabel="streams", ylabel="median ms, frame to tracks", title="latency")
    for axis in (throughput, latency):
        axis.set_xticks(counts)
        axis.legend()
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
