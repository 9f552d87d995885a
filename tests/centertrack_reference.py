"""Straightforward re-statements of CenterTrack's inference steps (reference-facts §3), used as test oracles.

Written per item and per frame, the way CenterTrack's Python does it, so the vectorised runtime can be checked
against an implementation with none of its shortcuts (logit-space peaks, candidate pre-filter, batched affines).
"""

import math

import numpy as np
import torch


def decode(heads, k, trans_out_to_frame, out_thresh):
    """generic_decode + generic_post_process + merge_outputs, batch 1, returning a list of dicts."""
    heat = torch.from_numpy(heads["hm"][None]).sigmoid()
    _, c, h, w = heat.shape
    hmax = torch.nn.functional.max_pool2d(heat, 3, stride=1, padding=1)
    heat = heat * (hmax == heat).float()
    scores, inds = torch.topk(heat.view(1, -1), k)
    classes = inds // (h * w)
    pix = inds % (h * w)
    ys, xs = (pix // w).float(), (pix % w).float()
    trans = trans_out_to_frame.astype(np.float32)
    results = []
    for j in range(k):
        score = float(scores[0, j])
        if score < out_thresh:
            break
        y, x = int(ys[0, j]), int(xs[0, j])
        reg = heads["reg"][:, y, x]
        size = np.maximum(heads["wh"][:, y, x], 0)
        cx, cy = x + reg[0], y + reg[1]
        corners = np.array([[cx - size[0] / 2, cy - size[1] / 2], [cx + size[0] / 2, cy + size[1] / 2]], np.float32)

        def tf(points):
            pts = np.ones((len(points), 3), np.float32)
            pts[:, :2] = points
            return np.dot(trans, pts.T).T

        ct = tf(np.array([[x, y]], np.float32))[0]
        tracking = tf(np.array([[x, y]], np.float32) + heads["tracking"][:, y, x])[0] - ct
        if score > out_thresh:
            results.append({"score": score, "class": int(classes[0, j]) + 1, "ct": ct, "tracking": tracking,
                            "bbox": tf(corners).reshape(4)})
    return results


class Tracker:
    """CenterTrack's Tracker.step (greedy, private detections), on lists of dicts."""

    def __init__(self, new_thresh=0.3, max_age=-1):
        self.new_thresh, self.max_age = new_thresh, max_age
        self.tracks, self.id_count = [], 0

    def step(self, results):
        area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
        n, m = len(results), len(self.tracks)
        dist = np.full((n, m), 0.0)
        for i, det in enumerate(results):
            px, py = det["ct"][0] + det["tracking"][0], det["ct"][1] + det["tracking"][1]
            for j, track in enumerate(self.tracks):
                d = (track["ct"][0] - px) ** 2 + (track["ct"][1] - py) ** 2
                bad = d > area(track["bbox"]) or d > area(det["bbox"]) or det["class"] != track["class"]
                dist[i, j] = d + (1e18 if bad else 0)
        matched = []
        for i in range(n):
            if m == 0:
                break
            j = int(np.argmin(dist[i]))
            if dist[i, j] < 1e16:
                dist[:, j] = 1e18
                matched.append((i, j))
        out = []
        for i, j in matched:
            det = dict(results[i], tracking_id=self.tracks[j]["tracking_id"], age=1,
                       active=self.tracks[j]["active"] + 1)
            out.append(det)
        matched_dets = {i for i, _ in matched}
        for i, det in enumerate(results):
            if i not in matched_dets and det["score"] > self.new_thresh:
                self.id_count += 1
                out.append(dict(det, tracking_id=self.id_count, age=1, active=1))
        matched_tracks = {j for _, j in matched}
        for j, track in enumerate(self.tracks):
            if j not in matched_tracks and track["age"] < self.max_age:
                out.append(dict(track, age=track["age"] + 1, active=0))
        self.tracks = out
        return out


def gaussian_radius(h, w, min_overlap=0.7):
    r1 = ((h + w) + math.sqrt((h + w) ** 2 - 4 * w * h * (1 - min_overlap) / (1 + min_overlap))) / 2
    r2 = (2 * (h + w) + math.sqrt((2 * (h + w)) ** 2 - 16 * (1 - min_overlap) * w * h)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)
