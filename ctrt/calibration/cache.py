"""INT8 calibration caches keyed by everything that makes them valid (never reused silently when stale)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..artifacts import CalibrationRecord


def cache_path(record: CalibrationRecord, folder: Path, stem: str) -> Path:
    """calibration/<model>_<algorithm>_<digest>.cache, the digest over the ONNX, the images (their checksum also
    fixes their count), the input shape, TensorRT's version and the algorithm: a different key is a different file."""
    text = "|".join([record.onnx_sha256, record.calibration_sha256, "x".join(map(str, record.input_shape)),
                     record.tensorrt, record.algorithm])
    return folder / f"{stem}_{record.algorithm}_{hashlib.sha256(text.encode()).hexdigest()[:16]}.cache"
