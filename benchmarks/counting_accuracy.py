"""Counting accuracy on generated pedestrian scenes: ctrt's counting rule on the tracks of CenterTrack's tracker and
of the robust preset, against supervision's ``LineZone`` (defaults) fed the same tracks, and the true counts (the
rule on the ground truth's boxes, whose identities are exact).

    .venv/bin/python benchmarks/counting_accuracy.py [--seed 100 --seed 101 ... | --seeds 700-729] [--frames 600]

Each seed is one ``ctrt make-data pedestrians`` street scene (1920x1080, 30 FPS, people walking across, crossing
and covering each other); ``--tracker-only``'s noisy detections (seeded as ``ctrt eval`` seeds them) go through
each tracker. Lines: ``door`` (a short segment across the near pavement) and ``street`` (across the whole walkway),
both vertical; ctrt's ``in`` is LineZone's ``out`` for the same drawn line (it names the sides the other way
round). Printed per line and direction, summed over the seeds: true, counted by each (the misses and extra counts:
each count paired with a true crossing within a second), and AI City's nwRMSE (the true-count-weighted mean over
seeds); then per seed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from ctrt.counting.shapes import shapes_for
from ctrt.eval.counting import count_scores, combined, crossings, match_tolerance, mot_table, truth_table
from ctrt.eval.evaluate import noisy_detections, track_detections
from ctrt.eval.mot import find_sequences
from ctrt.eval.synthetic import FPS, HEIGHT, SCENE_LINES, WIDTH, DetectionNoise, pedestrian_truth, write_sequence
from ctrt.runtime.tracker import parse_tracker

TRACKERS = ["centertrack", "robust"]


def line_zone_crossings(table: np.ndarray, length: int, line: tuple[tuple[float, float], ...]) -> dict[str, list[int]]:
    """The frames at which ``LineZone`` (its defaults) counts, fed the tracks frame by frame; named as ctrt names
    the directions."""
    import supervision as sv

    (x1, y1), (x2, y2) = line
    zone = sv.LineZone(start=sv.Point(x1 * WIDTH, y1 * HEIGHT), end=sv.Point(x2 * WIDTH, y2 * HEIGHT))
    found: dict[str, list[int]] = {"in": [], "out": []}
    for frame in range(1, length + 1):
        rows = table[table[:, 0] == frame]
        before = (zone.in_count, zone.out_count)
        zone.trigger(sv.Detections(xyxy=np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1),
                                   tracker_id=rows[:, 1].astype(int), class_id=np.ones(len(rows), int)))
        found["out"] += [frame] * (zone.in_count - before[0])
        found["in"] += [frame] * (zone.out_count - before[1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", default=[])
    parser.add_argument("--seeds", help="a range of seeds, FIRST-LAST")
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    if args.seeds:
        first, _, last = args.seeds.partition("-")
        args.seed += range(int(first), int(last or first) + 1)
    seeds = args.seed or [100, 101, 102]
    shapes = shapes_for("bench", SCENE_LINES)
    scores: dict[str, dict[str, dict]] = {f"{t} + ctrt": {} for t in TRACKERS} | {f"{t} + LineZone": {}
                                                                                  for t in TRACKERS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            folder = Path(tmp) / f"ped-{seed}"
            write_sequence(folder, pedestrian_truth(args.frames, seed), args.frames)
            sequence = find_sequences(folder)[0]
            truth = crossings(truth_table(sequence), args.frames, shapes, (WIDTH, HEIGHT))
            detections = noisy_detections(sequence, DetectionNoise(), 0)
            for name in TRACKERS:
                text, ours = track_detections(detections, parse_tracker(name), 1, shapes, (WIDTH, HEIGHT))
                table = mot_table(text)
                scores[f"{name} + ctrt"][str(seed)] = count_scores(truth, ours, args.frames, match_tolerance(FPS))
                theirs = {f"{s.name} {d}": frames for s in shapes
                          for d, frames in line_zone_crossings(table, args.frames, s.points).items()}
                scores[f"{name} + LineZone"][str(seed)] = count_scores(truth, theirs, args.frames, match_tolerance(FPS))
    print(f"seeds {', '.join(map(str, seeds))}, {args.frames} frames each; true / counted (-missed +extra), nwRMSE")
    keys = list(next(iter(next(iter(scores.values())).values())))
    print(f"{'':22}" + "".join(f"{k:>30}" for k in keys))
    for label, per_seed in scores.items():
        rows = combined(per_seed)
        cells = [f"{rows[k]['true']} / {rows[k]['counted']} (-{rows[k]['missed']} +{rows[k]['extra']}), "
                 + (f"{rows[k]['nwRMSE']:.3f}" if rows[k]["nwRMSE"] is not None else "-") for k in keys]
        print(f"{label:22}" + "".join(f"{c:>30}" for c in cells))
        for seed, seed_rows in per_seed.items():
            print(f"{'  seed ' + seed:22}" + "".join(
                f"{seed_rows[k]['true']} / {seed_rows[k]['counted']} ({seed_rows[k]['error']:+d})".rjust(30)
                for k in keys))


if __name__ == "__main__":
    main()
