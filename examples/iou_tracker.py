"""Your own tracker in ctrt's loop: a small IoU tracker (each detection continues the track whose last box it
overlaps most) plugged in through ``ctrt.TrackerLike``. ctrt still draws the tracks into the next frame's pre_hm,
so the model keeps CenterTrack's temporal input.

    python examples/iou_tracker.py MODEL.onnx clip.mp4 --save-mot iou.txt

BoxMOT's trackers (ByteTrack, OC-SORT, BoT-SORT) fit behind the same four members: ``step`` turns ctrt's
``Detections`` into their ``[x1, y1, x2, y2, score, class]`` array, calls their ``update(dets, frame)`` and maps the
rows they return (box, id) back onto ``Detections``.
"""

import argparse

import numpy as np

import ctrt
from ctrt.runtime.detections import iou_matrix


class IouTracker:
    def __init__(self, threshold: float = 0.3, min_iou: float = 0.3, max_age: int = 5) -> None:
        self.decode_floor = threshold  # the decoder keeps detections from this score up
        self.min_iou, self.max_age = min_iou, max_age
        self.reset()

    def reset(self) -> None:
        self.tracks = ctrt.Detections.empty()
        self.next_id = 1

    def step(self, dets: ctrt.Detections) -> ctrt.Detections:
        overlap = iou_matrix(dets.boxes, self.tracks.boxes) if len(dets) and len(self.tracks) else \
            np.zeros((len(dets), len(self.tracks)))
        pairs = []
        while overlap.size and overlap.max() >= self.min_iou:  # greedy: the best overlap first
            d, t = np.unravel_index(overlap.argmax(), overlap.shape)
            pairs.append((d, t))
            overlap[d, :], overlap[:, t] = -1, -1
        det_idx = np.array([d for d, _ in pairs], np.int64)
        track_idx = np.array([t for _, t in pairs], np.int64)
        matched = dets[det_idx]
        matched.ids = self.tracks.ids[track_idx]
        born = dets[np.setdiff1d(np.arange(len(dets)), det_idx)]
        born.ids = np.arange(self.next_id, self.next_id + len(born), dtype=np.int64)
        self.next_id += len(born)
        unmatched = np.setdiff1d(np.arange(len(self.tracks)), track_idx)
        kept = self.tracks[unmatched[self.tracks.ages[unmatched] < self.max_age]]
        kept.ages = kept.ages + 1
        kept.active = np.zeros(len(kept), np.int32)
        self.tracks = ctrt.Detections.concat([matched, born, kept])
        self.tracks.shown = self.tracks.active > 0
        return self.tracks

    def pre_hm_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        seen = self.tracks.active > 0
        return self.tracks.boxes[seen], self.tracks.scores[seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("source")
    parser.add_argument("--save-mot", default="iou.txt")
    args = parser.parse_args()

    with ctrt.load(args.model) as model:
        run = model.track(args.source, tracker=IouTracker, save_mot=args.save_mot)  # a class: one per stream
        for _ in run:
            pass
    print(f"{run.report.frames} frames, {run.report.streams[0].tracks} track ids, MOT rows in {args.save_mot}")


if __name__ == "__main__":
    main()
