"""Triton over a rate-limited link: bytes on the wire, aggregate FPS and latency per transport and client count.

The server runs in a network namespace of its own, joined to this one by a veth pair whose two ends are shaped
with ``tc tbf`` (each direction at the rate: upload on our end's egress, download on the server's). Bytes are the
veth's own counters (Ethernet frames, headers included), not tensor sizes. Transports:

- ``today``: a plain repository of the standard export; each request carries image, pre_img and pre_hm (float32 at
  the model's size), each response every head;
- ``raw``, ``jpeg:90``, ``jpeg:75``: ``ctrt triton --stateful`` of the fast-path export (1280x720 frames in,
  top-K out); the request carries the frame once (uint8 or JPEG) and last frame's boxes.

Accuracy of JPEG: each client's tracks against the raw run of the same video and client count (share of frames
whose ids are identical, the worst box difference in those frames). Needs root (ip netns, tc) and the Triton
environment (``make triton-env``). Run: ``sudo .venv/bin/python benchmarks/triton_network.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CTRT = str(Path(sys.executable).with_name("ctrt"))
SERVER_IP, CLIENT_IP = "10.213.0.2", "10.213.0.1"
SOURCE = (1280, 720)
LEGS = ("today", "raw", "jpeg:90", "jpeg:75")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def counters(device: str) -> tuple[int, int]:
    stats = Path("/sys/class/net") / device / "statistics"
    return int((stats / "tx_bytes").read_text()), int((stats / "rx_bytes").read_text())


class Link:
    """A namespace with one end of a veth pair; both ends shaped to ``rate`` with tbf."""

    def __init__(self) -> None:
        tag = str(os.getpid())
        self.ns, self.near, self.far = f"ctrtbench{tag}", f"ctrtc{tag}"[:15], f"ctrts{tag}"[:15]

    def __enter__(self) -> Link:
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.near, "type", "veth", "peer", "name", self.far)
        sh("ip", "link", "set", self.far, "netns", self.ns)
        sh("ip", "addr", "add", f"{CLIENT_IP}/30", "dev", self.near)
        sh("ip", "link", "set", self.near, "up")
        for args in (("addr", "add", f"{SERVER_IP}/30", "dev", self.far), ("link", "set", self.far, "up"),
                     ("link", "set", "lo", "up")):
            sh("ip", "netns", "exec", self.ns, "ip", *args)
        return self

    def shape(self, rate: str) -> None:
        # burst: at least rate/HZ; latency bounds the queue (bufferbloat) as a real uplink's would.
        tbf = ("tbf", "rate", rate, "burst", "1mb", "latency", "50ms")
        sh("tc", "qdisc", "replace", "dev", self.near, "root", *tbf)
        sh("ip", "netns", "exec", self.ns, "tc", "qdisc", "replace", "dev", self.far, "root", *tbf)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.near], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def prepare(work: Path, frames: int, clients: int, input_size: str) -> tuple[Path, list[Path]]:
    from ctrt.demo import make_demo_video

    standard, fast, repo = work / "standard.onnx", work / "fast.onnx", work / "repo"
    w, h = SOURCE
    for out, flags in ((standard, []), (fast, ["--preprocess-in-graph", "--source-size", f"{w}x{h}",
                                                "--decode-in-graph"])):
        subprocess.run([CTRT, "export", "--builtin", "demo", "--input-size", input_size, "--dynamic-batch",
                        "--no-check", "-o", str(out), *flags], check=True, capture_output=True)
    common = ["--backend", "python", "--queue-delay-us", "20000"]
    subprocess.run([CTRT, "triton", str(standard), "-o", str(repo), "--name", "today", *common], check=True,
                   capture_output=True)
    subprocess.run([CTRT, "triton", str(fast), "-o", str(repo), "--name", "stateful", "--stateful", *common],
                   check=True, capture_output=True)
    videos = [make_demo_video(work / f"scene{i}.avi", frames=frames, size=SOURCE, seed=900 + i) for i in range(clients)]
    return repo, videos


def client(url: str, video: str, out: str, transport: str) -> None:
    """One client process: track ``video``, write its frames' ids/boxes, latencies and wall times."""
    import ctrt

    model = ctrt.load(url, transport=None if transport == "today" else transport)
    frames, start = [], time.time()
    with model, model.track(video) as run:
        for results in run:
            frames.append({"ids": results.tracks.ids.tolist(), "boxes": results.tracks.boxes.tolist()})
    stream = run.report.streams[0]
    Path(out).write_text(json.dumps({"frames": frames, "start": start, "end": time.time(),
                                     "latency_ms": list(stream.latency_ms)}))


def run_clients(link: Link, model: str, videos: list[Path], transport: str, work: Path) -> dict:
    outs = [work / f"{model}-{transport}-{len(videos)}-{i}.json" for i in range(len(videos))]
    up0, down0 = counters(link.near)
    procs = [subprocess.Popen([sys.executable, __file__, "--client", f"triton://{SERVER_IP}:8001/{model}",
                               str(video), str(out), transport]) for video, out in zip(videos, outs)]
    if any(p.wait(timeout=1800) for p in procs):
        raise SystemExit(f"a client failed ({model}, {transport})")
    up1, down1 = counters(link.near)
    data = [json.loads(out.read_text()) for out in outs]
    frames = sum(len(d["frames"]) for d in data)
    latency = np.concatenate([d["latency_ms"] for d in data])
    wall = max(d["end"] for d in data) - min(d["start"] for d in data)
    return {"clients": len(videos), "frames": frames, "up_bytes_per_frame": (up1 - up0) / frames,
            "down_bytes_per_frame": (down1 - down0) / frames, "fps": frames / wall,
            **dict(zip(("p50_ms", "p90_ms", "p99_ms"), np.percentile(latency, (50, 90, 99)).tolist())),
            "tracks": [d["frames"] for d in data]}


def accuracy(got: list[list[dict]], raw: list[list[dict]]) -> dict:
    same = total = 0
    worst = 0.0
    for stream, reference in zip(got, raw):
        for a, b in zip(stream, reference, strict=True):
            total += 1
            if a["ids"] == b["ids"]:
                same += 1
                if a["boxes"]:
                    worst = max(worst, float(np.abs(np.array(a["boxes"]) - np.array(b["boxes"])).max()))
    return {"ids_identical": same / total, "worst_box_px": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100mbit,1gbit")
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--frames", type=int, default=4, help="frames per client")
    parser.add_argument("--input-size", default="512x512")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ctrt-net-") as tmp, Link() as link:
        work = Path(tmp)
        repo, videos = prepare(work, args.frames, max(counts), args.input_size)
        env = {**os.environ, "CTRT_TRITON_ENV": os.environ.get("CTRT_TRITON_ENV", str(ROOT / ".venv-triton"))}
        server = subprocess.Popen(["ip", "netns", "exec", link.ns, CTRT, "serve", str(repo), "--host", SERVER_IP,
                                   "--log", str(work / "server.log")], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert server.stdout is not None
            print(server.stdout.readline().strip(), flush=True)  # printed once the server is ready
            for rate in args.rates.split(","):
                link.shape(rate)
                for count in counts:
                    raw = None
                    for leg in LEGS:
                        model = "today" if leg == "today" else "stateful"
                        row = {"rate": rate, "transport": leg, **run_clients(link, model, videos[:count], leg, work)}
                        if leg == "raw":
                            raw = row["tracks"]
                        if leg.startswith("jpeg") and raw is not None:
                            row.update(accuracy(row["tracks"], raw))
                        del row["tracks"]
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"\n{'rate':>7} {'transport':>9} {'clients':>7} {'up KB/frame':>12} {'down KB/frame':>13} {'FPS':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'ids same':>8} {'worst px':>8}")
    for r in rows:
        extra = f"{r['ids_identical']:8.1%} {r['worst_box_px']:8.2f}" if "ids_identical" in r else ""
        print(f"{r['rate']:>7} {r['transport']:>9} {r['clients']:>7} {r['up_bytes_per_frame'] / 1e3:12.1f} "
              f"{r['down_bytes_per_frame'] / 1e3:13.1f} {r['fps']:6.2f} {r['p50_ms']:7.0f} {r['p99_ms']:7.0f} {extra}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--client":
        client(*sys.argv[2:])
    else:
        main()
