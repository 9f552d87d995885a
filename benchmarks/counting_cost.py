"""What counting costs the tracking loop per frame: 4 lines and 2 zones over 30 tracks walking across a 1280x720
frame (crossing the lines and the zones' edges as they go, so events happen).

    .venv/bin/python benchmarks/counting_cost.py [--frames 3000] [--tracks 30] [--rounds 5]

Each round feeds the same walk to a fresh ``Counter`` (``ctrt.counting``) and times ``update`` per frame; printed:
the median over rounds of the mean and the 99th percentile per frame, and the events counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ctrt.counting.counter import Counter
from ctrt.counting.shapes import shapes_for
from ctrt.runtime.detections import Detections

LINES = ["a:0.2,0.1,0.2,0.9", "b:0.5,0.1,0.5,0.9", "c:0.8,0.1,0.8,0.9", "d:0.1,0.5,0.9,0.5"]
ZONES = ["left:0.05,0.05,0.4,0.05,0.4,0.95,0.05,0.95", "right:0.6,0.2,0.95,0.2,0.95,0.8,0.75,0.9,0.6,0.8"]


def walk(frames: int, tracks: int, seed: int = 0) -> list[Detections]:
    """People 40x100 px walking at 2-6 px a frame, bouncing off the frame's sides; every track reported."""
    rng = np.random.default_rng(seed)
    position = rng.uniform((50, 150), (1230, 710), (tracks, 2))
    velocity = rng.uniform(-6, 6, (tracks, 2))
    out = []
    for _ in range(frames):
        position += velocity + rng.normal(0, 1, position.shape)
        bounce = (position < (20, 100)) | (position > (1260, 720))
        velocity[bounce] *= -1
        position = np.clip(position, (20, 100), (1260, 720))
        boxes = np.concatenate([position - (20, 100), position + (20, 0)], 1).astype(np.float32)
        dets = Detections.create(boxes, np.full(tracks, 0.9, np.float32), np.ones(tracks, np.int32),
                                 np.zeros((tracks, 2), np.float32), np.zeros((tracks, 2), np.float32))
        dets.ids[:] = np.arange(1, tracks + 1)
        out.append(dets)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--tracks", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frames = walk(args.frames, args.tracks)
    shapes = shapes_for("bench", LINES, ZONES)
    means, p99s = [], []
    for _ in range(args.rounds):
        counter = Counter(shapes, "bench", lambda: 30.0)
        times = np.empty(len(frames))
        events = 0
        for i, dets in enumerate(frames):
            start = time.perf_counter()
            events += len(counter.update(dets, (720, 1280, 3)))
            times[i] = time.perf_counter() - start
        means.append(times[1:].mean() * 1e3)  # the first frame makes the shapes' pixels
        p99s.append(np.percentile(times[1:], 99) * 1e3)
    print(f"{len(LINES)} lines, {len(ZONES)} zones, {args.tracks} tracks, {args.frames} frames, {events} events "
          f"a round: Counter.update per frame mean {np.median(means):.4f} ms, p99 {np.median(p99s):.4f} ms "
          f"(median over {args.rounds} rounds)")


if __name__ == "__main__":
    main()
