"""What publishing to MQTT and serving the live view cost the tracking thread, per frame, with 4 cameras.

    .venv/bin/python benchmarks/service_overhead.py [--frames 100] [--rounds 5]

The built-in demo model tracks 4 generated 1280x720 videos once; the ``Results`` are kept. Each round then hands
every camera's frames, in turn, to a ``PublishSink`` of one ``MqttPublisher`` connected to a Mosquitto this script
starts on a free loopback port (``publish_rate`` 0: an update message per track per frame, plus the frame topic:
the most messages a run can make) and to the run's ``LiveServer`` with one MJPEG viewer per camera reading at
``http_fps`` 10. Timed is what the tracking loop pays, ``sink.write`` and the server's call, on the calling thread;
JSON, network and JPEG work run on their own threads beside it. Printed: the median over rounds of the mean and
the 99th percentile per frame, the messages the broker acknowledged and the pictures the viewers received.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

import ctrt
from ctrt.demo import demo_model, make_demo_video
from ctrt.runtime.reports import RunReport, StreamReport
from ctrt.site.http import LiveServer
from ctrt.site.http_options import HttpOptions
from ctrt.site.mqtt import MqttOptions, MqttPublisher

CAMERAS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start (apt-get install mosquitto)")


def watch(url: str, stop: threading.Event, pictures: list[int]) -> None:
    """An MJPEG viewer: counts the pictures it receives until ``stop``."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        while not stop.is_set():
            line = answer.readline()
            if line.startswith(b"Content-Length:"):
                answer.readline()
                answer.read(int(line.split(b":")[1]))
                pictures[0] += 1


def one_round(results: list, videos: dict, port: int, live_view: bool, pictures: list[int]) -> tuple[np.ndarray, int]:
    publisher = MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{port}/bench", rate_hz=0, frames=True)).start()
    sinks = {name: publisher.sink(name) for name in videos}
    server = LiveServer(HttpOptions("0", fps=10), list(videos), RunReport([StreamReport(n) for n in videos]),
                        publisher).start() if live_view else None
    stop = threading.Event()
    viewers = [threading.Thread(target=watch, args=(f"{server.url}streams/{name}.mjpg", stop, pictures))
               for name in videos] if server else []
    for viewer in viewers:
        viewer.start()
    time.sleep(0.5)  # every viewer connected
    times = np.empty(len(results))
    for i, r in enumerate(results):
        start = time.perf_counter()
        sinks[r.stream].write(r)
        if server is not None:
            server(r)
        times[i] = time.perf_counter() - start
        time.sleep(0.005)  # a camera's pace, so the viewers see pictures while frames come
    stop.set()
    for sink in sinks.values():
        sink.close()
    report = publisher.close()
    if server is not None:
        server.close()
    for viewer in viewers:
        viewer.join(5)
    return times, report.sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx, _ = demo_model(None, 256, 256)
        videos = {f"cam{i}": str(make_demo_video(folder / f"cam{i}.mp4", args.frames, (1280, 720), seed=i))
                  for i in range(CAMERAS)}
        with ctrt.load(onnx, device="cpu") as model:
            results = list(model.track(videos, tracker="robust,min_hits=1"))
        tracks = sum(int(r.shown.sum()) for r in results) / len(results)
        broker, port = start_broker(folder)
        try:
            stats: dict[str, list[tuple[float, float]]] = {"publish": [], "publish + live view": []}
            sent, pictures = 0, [0]
            for _ in range(args.rounds):
                for mode in stats:
                    times, acknowledged = one_round(results, videos, port, mode != "publish", pictures)
                    sent += acknowledged
                    stats[mode].append((times.mean() * 1e3, np.percentile(times, 99) * 1e3))
        finally:
            broker.terminate()
            broker.wait()
    print(f"{CAMERAS} cameras x {args.frames} frames, {tracks:.1f} reported tracks per frame, {args.rounds} rounds")
    for mode, values in stats.items():
        mean, p99 = np.median(np.array(values), axis=0)
        print(f"{mode}: tracking thread per frame mean {mean:.3f} ms, p99 {p99:.3f} ms (median over rounds)")
    print(f"{sent} messages acknowledged by the broker, {pictures[0]} pictures to viewers")


if __name__ == "__main__":
    main()
