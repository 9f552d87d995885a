"""The tracker alone on generated pedestrian sequences: CenterTrack's defaults, max_age alone, the robust preset.

    .venv/bin/python benchmarks/tracker.py [--sequences 3] [--frames 600] [--seed 0] [--offset-noise PX]
        [--tracker SPEC ...] [--stride N ...]

`ctrt make-data pedestrians` writes MOTChallenge ground truth (street scenes, 1920x1080, 30 fps); `ctrt eval
--tracker-only` turns it into CenterTrack-like detections (misses growing with occlusion, scores falling with it,
box and offset noise, false positives; the same for every setting) and scores each setting with TrackEval.
``--offset-noise`` makes the tracking offsets less precise than the noise model's 1.5 px, as a weaker model's are.
``--stride N`` (repeat) plays a loop slower than the camera: every Nth frame tracked, the offsets reaching back to
the frame tracked before. Prints the table of docs/choosing.md (IDF1 / MOTA / HOTA / ID switches per sequence and combined; a row
per setting and stride) and the JSON behind it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from run_ctrt import ctrt

TRACKERS = ("centertrack", "max_age=30", "robust")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offset-noise", type=float, help="std of the tracking offsets' error in px")
    parser.add_argument("--tracker", action="append", help=f"settings to compare (default: {', '.join(TRACKERS)})")
    parser.add_argument("--stride", type=int, action="append", help="track every Nth frame (repeat; default 1)")
    args = parser.parse_args()
    trackers = args.tracker or TRACKERS
    noise = [] if args.offset_noise is None else ["--offset-noise", args.offset_noise]
    strides = [a for stride in args.stride or [] for a in ("--stride", stride)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ctrt("make-data", "pedestrians", root / "ped", "--count", args.sequences, "--frames", args.frames,
             "--seed", args.seed)
        ctrt("eval", "--tracker-only", "--mot", root / "ped", *[a for t in trackers for a in ("--tracker", t)],
             *noise, *strides, "--json", root / "eval.json")
        data = json.loads((root / "eval.json").read_text())
    columns = [*data["sequences"], "combined"]
    print("| tracker | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    labels = [entry["label"] for entry in data["entries"]]
    for label in labels:
        cells = [data["scores"][label][c] for c in columns]
        print(f"| {label} | " + " | ".join(f"{s['IDF1']:.3f} / {s['MOTA']:.3f} / {s['HOTA']:.3f} / {s['IDSW']:.0f}"
                                           for s in cells) + " |")
    print(json.dumps({label: data["scores"][label] for label in labels}, indent=1))


if __name__ == "__main__":
    main()
