"""Per-stage wall-clock times of the per-frame loop, kept in preallocated arrays."""

from __future__ import annotations

import numpy as np


class StageTimes:
    """Durations in ms per stage for every frame (grows by doubling, so appends are amortised O(1))."""

    def __init__(self, stages: tuple[str, ...], capacity: int = 1024) -> None:
        self.stages = stages
        self._data = np.zeros((capacity, len(stages)), np.float64)
        self.count = 0

    def add(self, durations_ms: np.ndarray) -> None:
        if self.count == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.count] = durations_ms
        self.count += 1

    @property
    def samples(self) -> np.ndarray:
        """[frames, stages] ms."""
        return self._data[: self.count]

    def recent_mean(self, frames: int = 30) -> dict[str, float]:
        recent = self.samples[-frames:]
        means = recent.mean(axis=0) if len(recent) else np.zeros(len(self.stages))
        return dict(zip(self.stages, means.tolist()))
