"""Plain vs in-graph pre-processing vs in-graph decode vs both: bytes over the bus and host time per frame.

    .venv/bin/python benchmarks/fastpath.py [--size 512x512] [--source-size 1280x720] [--duration 3]

Exports HarDNet-85 (seeded random weights) four ways with `ctrt export`, times them with one `ctrt bench --json`
run on ONNX Runtime CPU (a generated video of photographs at the source size), and computes the host<->device bytes
per frame from each model's I/O shapes, counting what the TensorRT backend moves: the previous image/frame is
already on the device, so only the current one, pre_hm and the outputs cross the bus.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import onnx

from ctrt.demo import make_demo_video

CTRT = str(Path(sys.executable).with_name("ctrt"))
ITEM = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.UINT8: 1, onnx.TensorProto.FLOAT16: 2}
VARIANTS = {"plain": [], "graph_preprocess": ["--preprocess-in-graph"], "graph_decode": ["--decode-in-graph"],
            "both": ["--preprocess-in-graph", "--decode-in-graph"]}


def ctrt(*args: object) -> str:
    result = subprocess.run([CTRT, *map(str, args)], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"ctrt {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def bus_bytes(path: Path) -> dict[str, int]:
    graph = onnx.load(str(path), load_external_data=False).graph

    def size(value: onnx.ValueInfoProto) -> int:
        count = 1
        for dim in value.type.tensor_type.shape.dim:
            count *= dim.dim_value
        return count * ITEM[value.type.tensor_type.elem_type]

    inputs = {v.name: size(v) for v in graph.input}
    resident = {"pre_img", "pre_frame"}  # swapped on the device, never copied after the first frame
    return {"host_to_device": sum(b for n, b in inputs.items() if n not in resident),
            "device_to_host": sum(size(v) for v in graph.output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--source-size", default="1280x720")
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    sw, sh = (int(v) for v in args.source_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = make_demo_video(root / "video.mp4", frames=30, size=(sw, sh))
        paths = {}
        for name, flags in VARIANTS.items():
            paths[name] = root / f"{name}.onnx"
            extra = ["--source-size", args.source_size] if "--preprocess-in-graph" in flags else []
            ctrt("export", "--random-init", "--input-size", args.size, "-o", paths[name], *flags, *extra)
        out = root / "bench.json"
        table = ctrt("bench", *paths.values(), "--source", video, "--duration", args.duration, "--json", out)
        bench = {Path(m["model"]).stem: m for m in json.loads(out.read_text())["models"]}
        report = {}
        for name, path in paths.items():
            stages = bench[name]["pipeline"]["stages"]
            report[name] = {**bus_bytes(path), "preprocess_ms": round(stages["preprocess"]["median"], 3),
                            "decode_ms": round(stages["decode"]["median"], 3),
                            "infer_ms": round(stages["infer"]["median"], 1),
                            "end_to_end_ms": round(bench[name]["pipeline"]["end_to_end"]["median"], 1)}
    plain, both = report["plain"], report["both"]
    print(table)
    print(json.dumps({"model": f"hardnet_85 {args.size}", "source": args.source_size, "per_frame": report,
                      "output_traffic_reduction": round(plain["device_to_host"] / both["device_to_host"], 1),
                      "input_traffic_reduction": round(plain["host_to_device"] / both["host_to_device"], 2),
                      "host_ms_saved (preprocess + decode)": round(
                          plain["preprocess_ms"] + plain["decode_ms"] - both["preprocess_ms"] - both["decode_ms"], 3)},
                     indent=2))


if __name__ == "__main__":
    main()
