"""What counting costs the tracking loop per frame: 4 lines and 2 zones over 30 tracks walking across a 1280x720
frame (crossing the lines and the zones' edges as they go, so events happen).

    .venv/bin/python benchmarks/counting_cost.py [--frames 3000] [--tracks 30] [--rounds 5] [--against REV]

Each round feeds the same walk to a fresh ``Counter`` (``ctrt.counting``) and times ``update`` per frame; printed:
the median over rounds of the mean and the 99th percentile per frame, and the events counted. ``--against``: the
revision's ``ctrt/counting/counter.py`` counts the same walk beside this tree's, the two taking turns frame by frame
(both see the same machine state), and the ratio of their means is printed too; they must count the same events.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ctrt.counting.counter import Counter
from ctrt.counting.shapes import shapes_for
from ctrt.runtime.detections import Detections
from revision import module_at

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
    parser.add_argument("--against", help="a git revision whose counter to time beside this tree's")
    args = parser.parse_args()
    frames = walk(args.frames, args.tracks)
    shapes = shapes_for("bench", LINES, ZONES)
    counters = {"this tree": Counter}
    if args.against:
        counters[args.against] = module_at(args.against, "ctrt.counting.counter").Counter
    means: dict[str, list[float]] = {label: [] for label in counters}
    p99s: dict[str, list[float]] = {label: [] for label in counters}
    events = dict.fromkeys(counters, 0)
    for _ in range(args.rounds):
        running = {label: make(shapes, "bench", lambda: 30.0) for label, make in counters.items()}
        times = {label: np.empty(len(frames)) for label in counters}
        events = dict.fromkeys(counters, 0)
        for i, dets in enumerate(frames):
            for label in (running if i % 2 else reversed(running)):  # taking turns at going first
                start = time.perf_counter()
                events[label] += len(running[label].update(dets, (720, 1280, 3)))
                times[label][i] = time.perf_counter() - start
        for label, spent in times.items():
            means[label].append(spent[1:].mean() * 1e3)  # the first frame makes the shapes' pixels
            p99s[label].append(np.percentile(spent[1:], 99) * 1e3)
    if len(set(events.values())) > 1:
        raise SystemExit(f"the counters disagree: {events} events")
    for label in counters:
        print(f"{label}: {len(LINES)} lines, {len(ZONES)} zones, {args.tracks} tracks, {args.frames} frames, "
              f"{events[label]} events a round: Counter.update per frame mean {np.median(means[label]):.4f} ms, "
              f"p99 {np.median(p99s[label]):.4f} ms (median over {args.rounds} rounds)")
    if args.against:
        ratios = np.array(means["this tree"]) / np.array(means[args.against])
        print(f"this tree / {args.against}, mean per frame, each round: {' '.join(f'{r:.3f}' for r in ratios)}")


if __name__ == "__main__":
    main()
