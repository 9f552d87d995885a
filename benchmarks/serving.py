"""1, 4 and 8 `ctrt bench` clients at once against one Triton server (Python backend, ONNX Runtime CPU, dynamic
batching), beside the same model run locally: aggregate throughput and latency percentiles.

    .venv/bin/python benchmarks/serving.py [--size 256x256] [--clients 1,4,8] [--duration 15]

Needs the server's environment (`make triton-env`, or --env). Every client is a separate `ctrt bench` process on
the demo scene (1280x720); they start together and measure for the same --duration. Per client the JSON gives the
pipeline's end-to-end samples (frame in, tracks out) and the bare loop's request latency; the server's statistics
give how many requests each execution carried (the dynamic batcher at work).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from run_ctrt import CTRT, ctrt

from ctrt.triton.local_server import LocalTriton


def statistics(server: LocalTriton, model: str) -> tuple[int, int]:
    import tritonclient.grpc as grpc

    with grpc.InferenceServerClient(server.grpc_url) as client:
        stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def bench_clients(target: str, count: int, root: Path, duration: float, frames: int) -> list[dict]:
    procs, outputs = [], []
    for i in range(count):
        out = root / f"{count}-{i}.json"
        outputs.append(out)
        procs.append(subprocess.Popen([CTRT, "bench", target, "--frames", str(frames), "--duration", str(duration),
                                       "--warmup", "2000", "--json", str(out)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a client failed: {err}")
    return [json.loads(out.read_text())["models"][0] for out in outputs]


def row(label: str, clients: list[dict], batching: tuple[int, int] | None) -> dict:
    pooled = np.concatenate([c["pipeline"]["end_to_end_samples_ms"] for c in clients])
    return {"setup": label, "clients": len(clients),
            "aggregate_fps": round(sum(c["pipeline"]["fps"] for c in clients), 2),
            "frame_latency_ms": {p: round(float(np.percentile(pooled, q)), 1)
                                 for p, q in (("p50", 50), ("p90", 90), ("p99", 99))},
            "request_latency_p50_ms": round(float(np.median([c["bare"]["latency"]["median"] for c in clients])), 1),
            "request_latency_p99_ms": round(max(c["bare"]["latency"]["p99"] for c in clients), 1),
            **({"requests_per_execution": round(batching[0] / max(batching[1], 1), 2)} if batching else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--queue-delay-us", type=int, default=5000)
    parser.add_argument("--env", type=Path, default=Path(".venv-triton"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "demo.onnx"
        ctrt("export", "--builtin", "demo", "--input-size", args.size, "--dynamic-batch", "-o", model)
        ctrt("triton", model, "-o", root / "repo", "--backend", "python", "--queue-delay-us", args.queue_delay_us)
        rows.append(row("local ONNX Runtime", bench_clients(str(model), 1, root, args.duration, args.frames), None))
        with LocalTriton(root / "repo", args.env) as server:
            for count in map(int, args.clients.split(",")):
                before = statistics(server, "ctrt")
                clients = bench_clients(f"triton://{server.grpc_url}/ctrt", count, root, args.duration, args.frames)
                after = statistics(server, "ctrt")
                rows.append(row("Triton", clients, (after[0] - before[0], after[1] - before[1])))
                print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"size": args.size, "duration_s": args.duration, "queue_delay_us": args.queue_delay_us,
                      "results": rows}, indent=1))


if __name__ == "__main__":
    main()
