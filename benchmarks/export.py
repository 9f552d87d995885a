"""Export time and ONNX Runtime vs PyTorch latency for HarDNet-85 (random weights) on this machine.

    .venv/bin/python benchmarks/export.py [--size 512x512] [--runs 10]

Both backends run the same inputs in one process, alternating, so the ratio is measured under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from ctrt.export.exporter import run_export, source_model
from ctrt.export.onnx_export import ExportOptions
from ctrt.sizes import parse_input_size
from ctrt.export.parity import standard_feeds
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ctrt.runtime.backends.torch_backend import TorchBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    h, w = parse_input_size(args.size)
    source = source_model(None, "hardnet_85")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hardnet_85.onnx"
        start = time.perf_counter()
        result = run_export(source, path, ExportOptions(h, w))
        export_s = time.perf_counter() - start
        onnx_backend = OnnxRuntimeBackend(path, "cpu")
        torch_backend = TorchBackend(source.model, result.meta, "cpu")
        feed = standard_feeds(result.meta.inputs, 1, h, w)["photo"]
        times: dict[str, list[float]] = {"onnxruntime": [], "pytorch": []}
        for backend in (onnx_backend, torch_backend):
            backend(feed)  # warm-up
        for _ in range(args.runs):
            for name, backend in (("onnxruntime", onnx_backend), ("pytorch", torch_backend)):
                t0 = time.perf_counter()
                backend(feed)
                times[name].append((time.perf_counter() - t0) * 1e3)
    median = {k: float(np.median(v)) for k, v in times.items()}
    report = {
        "model": f"hardnet_85 {h}x{w}", "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads", "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "export_seconds_incl_simplify_and_check": round(export_s, 1),
        "parity_max_abs": max(r.max_abs for r in result.parity),
        "median_ms": {k: round(v, 1) for k, v in median.items()}, "runs": args.runs,
        "pytorch_over_onnxruntime": round(median["pytorch"] / median["onnxruntime"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
