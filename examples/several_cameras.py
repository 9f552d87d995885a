"""Several cameras (or files) batched on one model, each with its own tracker, outputs per stream in one folder.

    python examples/several_cameras.py MODEL.onnx 0 1 rtsp://door/live --save-dir runs/site
"""

import argparse

import ctrt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--save-dir", help="per stream: <name>.mp4, <name>.txt (MOT) and <name>.jsonl")
    args = parser.parse_args()

    with ctrt.load(args.model) as model, model.track(args.sources, save_dir=args.save_dir) as run:
        seen: dict[str, set[int]] = {name: set() for name in run.streams}
        for r in run:
            new = set(r.ids[r.shown].tolist()) - seen[r.stream]
            if new:
                print(f"{r.stream} frame {r.index}: new tracks {sorted(new)}")
            seen[r.stream] |= new
    for stream in run.report.streams:
        print(f"{stream.name}: {stream.frames} frames, {stream.tracks} track ids, {stream.fps:.1f} FPS, "
              f"{stream.dropped} dropped")
    raise SystemExit(run.report.exit_status)


if __name__ == "__main__":
    main()
