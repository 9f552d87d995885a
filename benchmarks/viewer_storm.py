"""The tracking rate while viewers of the live view connect and hang up mid-answer, against the same run unwatched.

    .venv/bin/python benchmarks/viewer_storm.py [--windows 6] [--window-frames 60] [--clients 8]

The built-in demo model (224x224, exported to export/ once) tracks one generated 640x480 video with ``--http`` on loopback. The run's frames
are cut into windows that alternate: quiet (no client), then storm (``--clients`` client processes, niced so they
take little of the CPU from the run, each opening connections to the live view (``/streams/cam.mjpg``), the page
and ``/metrics`` in turn and hanging up at once with a reset, as fast as they can). Printed: frames per second of
each window, the median of storm over quiet, the connections made, and the lines the run printed for them (at most
one is promised: the clients that hung up are counted, not each reported).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import socket
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

import ctrt
from ctrt.demo import demo_model, make_demo_video

PATHS = ("/streams/cam.mjpg", "/", "/metrics")


def storm(port: int, stop, made) -> None:  # type: ignore[no-untyped-def]
    """One client process: connect, ask, hang up with a reset (SO_LINGER 0), again, until ``stop``."""
    os.nice(19)
    count = 0
    while not stop.is_set():
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=2)
            connection.sendall(f"GET {PATHS[count % len(PATHS)]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                               .encode())
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
            count += 1
        except OSError:
            time.sleep(0.01)
    with made.get_lock():
        made.value += count


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=6, help="quiet and storm windows, alternating")
    parser.add_argument("--window-frames", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    lines = Lines()
    logging.getLogger("ctrt").addHandler(lines)
    with tempfile.TemporaryDirectory() as tmp:
        onnx, _ = demo_model(None, 224, 224)
        video = make_demo_video(Path(tmp) / "cam.avi", args.windows * args.window_frames + 5, (640, 480), seed=5)
        made = multiprocessing.Value("l", 0)
        rates: dict[str, list[float]] = {"quiet": [], "storm": []}
        with ctrt.load(onnx, device="cpu") as model, \
                model.track({"cam": str(video)}, http="127.0.0.1:0", drop="none") as run:
            port = int(run.http_url.rstrip("/").rsplit(":", 1)[1])
            clients: list[multiprocessing.Process] = []
            stop = multiprocessing.Event()
            window, began = 0, time.perf_counter()
            for r in run:
                if r.index == 0:
                    began = time.perf_counter()  # the first frame pays the model's warm-up
                    continue
                if r.index % args.window_frames:
                    continue
                rates["storm" if window % 2 else "quiet"].append(args.window_frames / (time.perf_counter() - began))
                stop.set()
                for client in clients:
                    client.join()
                window += 1
                if window == args.windows:
                    break
                stop, clients = multiprocessing.Event(), []
                if window % 2:
                    clients = [multiprocessing.Process(target=storm, args=(port, stop, made))
                               for _ in range(args.clients)]
                    for client in clients:
                        client.start()
                began = time.perf_counter()
    print(f"frames per second, quiet windows: {' '.join(f'{x:.2f}' for x in rates['quiet'])}")
    print(f"frames per second, storm windows: {' '.join(f'{x:.2f}' for x in rates['storm'])}")
    print(f"storm / quiet (medians): {np.median(rates['storm']) / np.median(rates['quiet']):.3f}; "
          f"{made.value} connections hung up; {len(lines.lines)} lines printed about them: {lines.lines}")


if __name__ == "__main__":
    main()
