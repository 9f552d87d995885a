"""TensorRT's implicit INT8 calibrator (TensorRT 8.5-10.x; removed in 11) over ctrt's calibration inputs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import atomic_output
from ..runtime.cuda_memory import CudaMemory

ALGORITHMS = ("entropy", "minmax")


def make_calibrator(algorithm: str, batches: Iterator[dict[str, np.ndarray]], batch_size: int, cuda: CudaMemory,
                    read_from: Path | None, write_to: Path, report: Callable[[int], None]) -> Any:
    """An ``IInt8Calibrator`` that feeds device batches until ``batches`` ends and persists TensorRT's cache.

    ``read_from`` is returned to TensorRT as the cache when it exists, which skips calibration entirely.
    """
    import tensorrt as trt

    algo = {"entropy": trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2,
            "minmax": trt.CalibrationAlgoType.MINMAX_CALIBRATION}[algorithm]

    class Calibrator(trt.IInt8Calibrator):
        def __init__(self) -> None:
            trt.IInt8Calibrator.__init__(self)
            self.device: dict[str, int] = {}
            self.stream = cuda.create_stream()
            self.batches_fed = 0

        def get_algorithm(self) -> trt.CalibrationAlgoType:
            return algo

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:  # type: ignore[override]  # None ends calibration
            feed = next(batches, None)
            if feed is None:
                return None
            pointers = []
            for name in names:
                array = np.ascontiguousarray(feed[name], np.float32)
                if name not in self.device:
                    self.device[name] = cuda.alloc(array.nbytes)
                cuda.to_device(self.device[name], array, self.stream)
                pointers.append(self.device[name])
            cuda.synchronize(self.stream)  # ``array`` must outlive its copy
            self.batches_fed += 1
            report(self.batches_fed)
            return pointers

        def read_calibration_cache(self) -> bytes | None:  # None means "calibrate"
            return read_from.read_bytes() if read_from is not None and read_from.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            with atomic_output(write_to) as tmp:
                tmp.write_bytes(bytes(cache))

    return Calibrator()
