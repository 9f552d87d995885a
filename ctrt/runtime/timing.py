"""Per-stage wall-clock times of the per-frame loop, kept in preallocated arrays.

A run keeps running totals (for means) and the last ``keep`` frames (for the live status line): memory stays
constant however long a camera runs. The benchmark asks for every sample (``keep=None``).
"""

from __future__ import annotations

import numpy as np

RUN_KEEP = 1024


class StageTimes:
    """Durations in ms per stage; with ``keep=None`` every frame (grows by doubling), else a ring of ``keep``."""

    def __init__(self, stages: tuple[str, ...], keep: int | None = RUN_KEEP) -> None:
        self.stages = stages
        self.keep = keep
        self._data = np.zeros((keep or 1024, len(stages)), np.float64)
        self._total = np.zeros(len(stages), np.float64)
        self.count = 0

    def add(self, durations_ms: np.ndarray) -> None:
        if self.keep is None and self.count == len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.count % len(self._data)] = durations_ms
        self._total += durations_ms
        self.count += 1

    @property
    def samples(self) -> np.ndarray:
        """[frames, stages] ms: every frame with ``keep=None``, else the last ``keep`` (oldest first)."""
        if self.keep is None or self.count <= len(self._data):
            return self._data[: self.count]
        return np.roll(self._data, -(self.count % len(self._data)), axis=0)

    def mean(self) -> dict[str, float]:
        """Mean ms per stage over every frame so far."""
        return dict(zip(self.stages, (self._total / max(self.count, 1)).tolist()))
