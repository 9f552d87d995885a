"""Count objects crossing a line with supervision's ``LineZone`` on ctrt's tracks (``pip install supervision``).

    python examples/count_line_crossings.py MODEL.onnx clip.mp4 --line 0,180,640,180
"""

import argparse

import supervision as sv

import ctrt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("source")
    parser.add_argument("--line", default="0,180,640,180", help="x1,y1,x2,y2 in source pixels")
    args = parser.parse_args()

    x1, y1, x2, y2 = (int(v) for v in args.line.split(","))
    line = sv.LineZone(start=sv.Point(x1, y1), end=sv.Point(x2, y2))
    with ctrt.load(args.model) as model:
        for r in model.track(args.source, tracker="robust"):
            line.trigger(r.to_supervision())
    print(f"in {line.in_count} out {line.out_count}")


if __name__ == "__main__":
    main()
