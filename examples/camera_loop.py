"""A program with its own capture loop: each frame goes to ``Session.update``, the annotated frame is shown or saved.

    python examples/camera_loop.py MODEL.onnx --source 0            # a camera, in a window
    python examples/camera_loop.py MODEL.onnx --source clip.mp4 --out tracked.mp4
"""

import argparse

import cv2

import ctrt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--source", default="0", help="camera index or video file")
    parser.add_argument("--out", help="write the annotated frames to this .mp4 instead of showing them")
    args = parser.parse_args()

    model = ctrt.load(args.model)
    session = model.session(tracker="robust")
    capture = cv2.VideoCapture(int(args.source) if args.source.isdigit() else args.source)
    writer = None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        r = session.update(frame)
        for track_id, box in zip(r.ids[r.shown], r.boxes[r.shown].round().astype(int)):
            print(f"frame {r.index}: track {track_id} at {box.tolist()}")
        if args.out:
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(args.out, cv2.VideoWriter.fourcc(*"mp4v"), 30, (width, height))
            writer.write(r.plot())
        else:
            cv2.imshow("ctrt", r.plot())
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                break
    capture.release()
    if writer is not None:
        writer.release()
    model.close()


if __name__ == "__main__":
    main()
