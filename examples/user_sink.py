"""Your own outputs beside ctrt's: a sink object (``write`` and ``close``) and a plain callable, fed every frame the
run's files get and closed with them, however the run ends (its end, ``break``, an exception, Ctrl-C, SIGTERM).

    python examples/user_sink.py MODEL.onnx clip.mp4 --save-dir runs/sink
"""

import argparse
import collections
import json

import ctrt


class ClassCounter:
    """Counts the track ids seen per class and writes the totals to a JSON file when the run closes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ids: dict[int, set[int]] = collections.defaultdict(set)
        self.frames = 0

    def write(self, r: ctrt.Results) -> None:
        shown = r.shown
        for cls, tid in zip(r.classes[shown].tolist(), r.ids[shown].tolist()):
            self.ids[cls].add(tid)
        self.frames += 1

    def close(self) -> None:
        totals = {"frames": self.frames, "ids_per_class": {str(c): len(i) for c, i in sorted(self.ids.items())}}
        with open(self.path, "w") as file:
            json.dump(totals, file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("source")
    parser.add_argument("--save-dir", default="runs/sink")
    parser.add_argument("--counts", default="counts.json", help="where the counter writes its totals")
    args = parser.parse_args()

    busy = []

    def note_busy_frames(r: ctrt.Results) -> None:  # a callable is a sink too
        if int(r.shown.sum()) >= 2:
            busy.append(r.index)

    with ctrt.load(args.model) as model:
        with model.track({"clip": args.source}, save_dir=args.save_dir, sinks=[ClassCounter(args.counts)],
                         on_result=note_busy_frames) as run:
            for _ in run:
                pass
    print(f"{run.report.frames} frames; {len(busy)} with two or more tracks; totals in {args.counts}")


if __name__ == "__main__":
    main()
