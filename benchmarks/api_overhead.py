"""What the library API costs per frame on top of the tracker's stages, on the same model outputs and frames.

    .venv/bin/python benchmarks/api_overhead.py [--frames 200] [--rounds 5]

The built-in demo model (256x256) runs once over a generated 1280x720 video and its heads are recorded; every loop
below then replays those heads (inference takes no time, so only the loop's own work is left to measure):

- ``stages``: the stages called by hand, each object built once (pre-process, pre_hm, decode, tracker), as a
  program would write them without ``ctrt``'s loop;
- ``Session.update``: the same frames through ``model.session().update(frame)``, with ``Results`` and stage times;
- ``Model.track``: the video file through ``model.track(path)`` (threaded capture and the scheduler), against the
  hand-written loop reading the same file with ``cv2.VideoCapture``.

Each round runs every loop once in turn; the medians over rounds of the mean ms per frame are printed, with the
differences, and the tracks of all loops are checked to be the same.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import ctrt
from ctrt.demo import demo_model, demo_tracker, make_demo_video
from ctrt.runtime.decode import TOPK, Decoder
from ctrt.runtime.prehm import PreHeatmapRenderer
from ctrt.runtime.preprocess import Preprocessor
from ctrt.runtime.tracker import Tracker


class Replay:
    """A backend that returns recorded heads in order, so a loop's cost is all that is timed."""

    def __init__(self, real: ctrt.Model, frames: list[np.ndarray]) -> None:
        self.meta, self.name = real.meta, "replay"
        session = real.session(tracker=demo_tracker())
        self.outputs: list[dict[str, np.ndarray]] = []
        recording = real.backend

        def record(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            out = recording(feed)
            self.outputs.append({k: v.copy() for k, v in out.items()})
            return out

        session.backend = record  # type: ignore[assignment]
        for frame in frames:
            session.update(frame)
        self.calls = 0

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.outputs[self.calls % len(self.outputs)]
        self.calls += 1
        return out

    last_ms = device_bytes = run_on_device = None


def by_hand(backend: Replay, frames, meta) -> tuple[float, list[list[int]]]:
    """The stages as a program would call them itself (what ``ctrt``'s loop adds is measured against this)."""
    h, w = meta.input_size
    pre, renderer = Preprocessor(h, w, meta.mean, meta.std), PreHeatmapRenderer(h, w)
    tracker = Tracker(demo_tracker())
    decoder = Decoder.for_meta(meta, TOPK, tracker.config.decode_floor)
    image, pre_img = np.empty((1, 3, h, w), np.float32), np.empty((1, 3, h, w), np.float32)
    pre_hm = np.zeros((1, 1, h, w), np.float32)
    backend.calls, ids, first = 0, [], True
    t0 = time.perf_counter()
    count = 0
    for frame in frames:
        geometry = pre(frame, image[0])
        renderer.render(tracker.pre_hm_boxes()[0], geometry.to_input, pre_hm[0, 0])
        out = backend({"image": image, "pre_img": image if first else pre_img, "pre_hm": pre_hm})
        tracks = tracker.step(decoder({k: v[0] for k, v in out.items()}, geometry))
        image, pre_img, first = pre_img, image, False
        ids.append(tracks.ids.tolist())
        count += 1
    return (time.perf_counter() - t0) * 1e3 / count, ids


def video_frames(path: Path):
    capture = cv2.VideoCapture(str(path))
    while True:
        ok, frame = capture.read()
        if not ok:
            capture.release()
            return
        yield frame


def with_session(model: ctrt.Model, frames) -> tuple[float, list[list[int]]]:
    model.backend.calls = 0  # type: ignore[attr-defined]
    session = model.session(tracker=demo_tracker())
    ids, count = [], 0
    t0 = time.perf_counter()
    for frame in frames:
        ids.append(session.update(frame).ids.tolist())
        count += 1
    return (time.perf_counter() - t0) * 1e3 / count, ids


def with_track(model: ctrt.Model, video: Path) -> tuple[float, list[list[int]]]:
    model.backend.calls = 0  # type: ignore[attr-defined]
    ids = []
    t0 = time.perf_counter()
    with model.track(str(video), tracker=demo_tracker()) as run:
        for r in run:
            ids.append(r.ids.tolist())
    return (time.perf_counter() - t0) * 1e3 / len(ids), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the decode thread and the loop share 2 cores alike in every variant
    with tempfile.TemporaryDirectory() as tmp:
        video = make_demo_video(Path(tmp) / "v.mp4", frames=args.frames, size=(1280, 720))
        frames = list(video_frames(video))
        onnx_path, _ = demo_model(None, 256, 256)
        with ctrt.load(onnx_path, device="cpu") as real:
            replay = Replay(real, frames)
        model = ctrt.Model(replay, "replay")  # type: ignore[arg-type]
        samples: dict[str, list[float]] = {k: [] for k in ("stages", "session", "stages_reading", "track")}
        reference = None
        for _ in range(args.rounds):
            for name, fn in (("stages", lambda: by_hand(replay, frames, replay.meta)),
                             ("session", lambda: with_session(model, frames)),
                             ("stages_reading", lambda: by_hand(replay, video_frames(video), replay.meta)),
                             ("track", lambda: with_track(model, video))):
                ms, ids = fn()
                reference = reference or ids
                if ids != reference:
                    raise SystemExit(f"{name}: tracks differ from the hand-written loop's")
                samples[name].append(ms)
    median = {k: round(float(np.median(v)), 3) for k, v in samples.items()}
    print(json.dumps({
        "frames": len(frames), "rounds": args.rounds, "ms_per_frame": median,
        "session_overhead_ms": round(median["session"] - median["stages"], 3),
        "track_overhead_ms": round(median["track"] - median["stages_reading"], 3),
    }, indent=1))


if __name__ == "__main__":
    main()
