"""N streams batched on one model vs N single-stream loops, N = 1, 2, 4, 8, in one interleaved `ctrt bench` run.

    .venv/bin/python benchmarks/streams.py [--size 256x256] [--frames 10] [--rounds 2]

The model is the built-in demo model (HarDNet-85, dynamic batch) exported through the CLI; the frames are the demo
scene at 1280x720. Prints the table and the JSON that docs/performance.md quotes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from run_ctrt import ctrt



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--counts", default="1,2,4,8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "demo.onnx"
        ctrt("export", "--builtin", "demo", "--input-size", args.size, "--dynamic-batch", "-o", model)
        print(ctrt("bench", model, "--streams", args.counts, "--frames", args.frames, "--rounds", args.rounds,
                   "--json", root / "streams.json"))
        data = json.loads((root / "streams.json").read_text())
    summary = [{"streams": row["count"], "batched_fps": round(row["batched"]["fps"], 2),
                "sequential_fps": round(row["sequential"]["fps"], 2), "speedup": round(row["speedup"], 2),
                "batched_latency_p50_ms": round(row["batched"]["latency"]["median"]),
                "sequential_latency_p50_ms": round(row["sequential"]["latency"]["median"]),
                "batched_wall_ms_per_frame": round(row["batched"]["wall_ms_per_frame"], 1),
                "batched_stage_sum_ms_per_frame": round(row["batched"]["stage_sum_ms_per_frame"], 1),
                "batched_infer_ms_per_frame": round(row["batched"]["infer_ms_per_frame"], 1)}
               for row in data["streams"]]
    print(json.dumps({"size": args.size, "frames_per_stream": args.frames, "rounds": args.rounds,
                      "backend": data["backend"], "results": summary}, indent=1))


if __name__ == "__main__":
    main()
