"""The tracker's per-frame cost at --tracks tracks: this tree's against a git revision's, in one run.

    .venv/bin/python benchmarks/tracker_cost.py [--against REV] [--tracks 30] [--iterations 2000]

The revision's ``ctrt/runtime/tracker.py`` is loaded beside this tree's (it shares the rest of the package), and both
step the same detections, alternating, for CenterTrack's defaults and the robust preset; this tree's also at a gap
of 3 camera frames. Prints the median ms of each and the difference to the revision's.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ctrt.runtime.detections import Detections
from ctrt.runtime.tracker import PRESETS, Tracker
from revision import module_at


def crowd(count: int) -> Detections:
    """``count`` detections of people scattered over a 1280x720 frame, in score order (seeded)."""
    rng = np.random.default_rng(0)
    centres = rng.uniform([100, 100], [1180, 620], (count, 2)).astype(np.float32)
    sizes = rng.uniform(30, 200, (count, 2)).astype(np.float32)
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    return Detections.create(boxes, np.linspace(0.9, 0.4, count, dtype=np.float32), np.ones(count, np.int32),
                             centres, rng.normal(0, 2, (count, 2)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="git revision to compare with (default HEAD)")
    parser.add_argument("--tracks", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    before = module_at(args.against, "ctrt.runtime.tracker")
    dets = crowd(args.tracks)
    cases = {}
    for preset in ("centertrack", "robust"):
        old, new = before.Tracker(before.PRESETS[preset]), Tracker(PRESETS[preset])
        old.step(dets)
        new.step(dets)
        held_old, held_new = old.tracks, new.tracks  # every timed step starts from the same tracks
        steps = {"revision": lambda: old.step(dets), "this tree": lambda: new.step(dets),
                 "this tree, gap 3": lambda: new.step(dets, 3)}
        samples: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(args.iterations):
            for label, step in steps.items():  # alternating: both see the same machine state
                old.tracks, new.tracks = held_old, held_new
                t0 = time.perf_counter()
                step()
                samples[label].append((time.perf_counter() - t0) * 1e3)
        medians = {label: round(float(np.median(s)), 4) for label, s in samples.items()}
        cases[preset] = {**medians, "difference_ms": round(medians["this tree"] - medians["revision"], 4),
                         "ratio": round(medians["this tree"] / medians["revision"], 3)}
    print(json.dumps({"tracks": args.tracks, "iterations": args.iterations, "against": args.against,
                      "median_ms": cases}, indent=2))


if __name__ == "__main__":
    main()
