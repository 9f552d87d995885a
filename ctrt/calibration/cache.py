"""INT8 calibration caches keyed by everything that makes them valid (never reused silently when stale)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CacheKey:
    onnx_sha256: str
    calibration_sha256: str
    input_shape: tuple[int, ...]
    tensorrt: str
    algorithm: str

    @property
    def digest(self) -> str:
        text = "|".join([self.onnx_sha256, self.calibration_sha256, "x".join(map(str, self.input_shape)),
                         self.tensorrt, self.algorithm])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def path(self, folder: Path, stem: str) -> Path:
        """calibration/<model>_<algorithm>_<digest>.cache: a different key is a different file."""
        return folder / f"{stem}_{self.algorithm}_{self.digest}.cache"
