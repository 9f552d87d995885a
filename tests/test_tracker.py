"""Tracker scenarios with the ids written down, CenterTrack parity on random sequences, and properties."""

import numpy as np
from hypothesis import given, settings, strategies as st

from ctrt.runtime.detections import Detections
from ctrt.runtime.tracker import Tracker, TrackerConfig
import centertrack_reference as ref


def dets(*objects):
    """objects: (cx, cy, size, score, class, (dx, dy) offset to the previous centre)."""
    if not objects:
        return Detections.empty()
    objects = sorted(objects, key=lambda o: -o[3])  # decode emits descending scores
    cx, cy, size, score, cls, off = zip(*objects)
    cx, cy, half = np.array(cx, np.float32), np.array(cy, np.float32), np.array(size, np.float32) / 2
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)
    return Detections.create(boxes, np.array(score, np.float32), np.array(cls, np.int32), np.stack([cx, cy], 1),
                             np.array(off, np.float32).reshape(-1, 2))


def ids_by_lane(tracks):
    live = tracks[tracks.active > 0]
    return dict(zip(live.centers[:, 1].round().astype(int).tolist(), live.ids.tolist()))


def test_crossing_objects_keep_their_ids():
    tracker = Tracker()
    history = []
    for t in range(9):
        a = (10 + 10 * t, 45, 20, 0.9, 1, (-10 if t else 0, 0))  # moving right on y=45
        b = (90 - 10 * t, 55, 20, 0.8, 1, (10 if t else 0, 0))  # moving left on y=55, crossing a at t=4
        tracks = tracker.step(dets(a, b))
        history.append((ids_by_lane(tracks)[45], ids_by_lane(tracks)[55]))
    assert history == [(1, 2)] * 9


def test_occlusion_survives_with_max_age_and_restarts_without():
    frames = [dets((50, 50, 30, 0.9, 1, (0, 0)))] * 2 + [dets()] * 2 + [dets((52, 50, 30, 0.9, 1, (-2, 0)))]
    kept = Tracker(TrackerConfig(max_age=3))
    outputs = [kept.step(f) for f in frames]
    assert [o.ids.tolist() for o in outputs] == [[1], [1], [1], [1], [1]]
    assert [o.active.tolist() for o in outputs] == [[1], [2], [0], [0], [1]]
    assert [o.ages.tolist() for o in outputs] == [[1], [1], [2], [3], [1]]
    dropped = Tracker(TrackerConfig(max_age=-1))
    assert [dropped.step(f).ids.tolist() for f in frames] == [[1], [1], [], [], [2]]


def test_class_gating_and_distance_gating():
    tracker = Tracker()
    tracker.step(dets((50, 50, 20, 0.9, 1, (0, 0)), (200, 50, 20, 0.9, 1, (0, 0))))
    # Same place, other class -> new id; same class but 25 px away (625 > box area 400) -> new id.
    out = tracker.step(dets((50, 50, 20, 0.9, 2, (0, 0)), (225, 50, 20, 0.8, 1, (0, 0))))
    assert sorted(out.ids.tolist()) == [3, 4]


def test_new_track_threshold_and_matching_below_it():
    tracker = Tracker(TrackerConfig(new_thresh=0.4))
    out = tracker.step(dets((50, 50, 20, 0.9, 1, (0, 0)), (150, 50, 20, 0.35, 1, (0, 0))))
    assert out.ids.tolist() == [1]  # 0.35 is below new_thresh: not started
    out = tracker.step(dets((52, 50, 20, 0.35, 1, (-2, 0))))
    assert out.ids.tolist() == [1] and out.active.tolist() == [2]  # but a weak detection still continues a track


def test_hungarian_finds_the_assignment_greedy_misses():
    # Tracks 1 at x=0 and 2 at x=10 (boxes 40 wide). Det p (score .9) at x=6 is nearer track 2 (16 vs 36), so
    # greedy gives it track 2 and leaves q (x=14) track 1: cost 16 + 196. Optimal: p->1, q->2, cost 36 + 16.
    first = dets((0, 0, 40, 0.9, 1, (0, 0)), (10, 0, 40, 0.8, 1, (0, 0)))
    second = dets((6, 0, 40, 0.9, 1, (0, 0)), (14, 0, 40, 0.8, 1, (0, 0)))
    greedy, optimal = Tracker(), Tracker(TrackerConfig(hungarian=True))
    greedy.step(first)
    optimal.step(first)
    assert greedy.step(second).ids.tolist() == [2, 1]
    assert optimal.step(second).ids.tolist() == [1, 2]


def random_frames(rng, frames=12, objects=6):
    pos = rng.uniform(0, 200, (objects, 2))
    vel = rng.uniform(-6, 6, (objects, 2))
    for _ in range(frames):
        pos += vel
        keep = rng.random(objects) > 0.2
        n = int(keep.sum())
        jitter = rng.normal(0, 1, (n, 2))
        yield dets(*[(float(x), float(y), float(s), float(sc), int(c), (float(-vx + j[0]), float(-vy + j[1])))
                     for (x, y), (vx, vy), s, sc, c, j in zip(pos[keep], vel[keep], rng.uniform(10, 40, n),
                                                               rng.uniform(0.2, 1, n), rng.integers(1, 3, n), jitter)])


def test_matches_centertrack_tracker_on_random_sequences():
    rng = np.random.default_rng(7)
    for max_age in (-1, 2):
        ours, theirs = Tracker(TrackerConfig(max_age=max_age)), ref.Tracker(max_age=max_age)
        for frame in random_frames(rng):
            out = ours.step(frame)
            results = [{"score": float(s), "class": int(c), "ct": ct.tolist(), "tracking": tr.tolist(),
                        "bbox": b.tolist()} for s, c, ct, tr, b in
                       zip(frame.scores, frame.classes, frame.centers, frame.tracking, frame.boxes)]
            expected = theirs.step(results)
            assert out.ids.tolist() == [d["tracking_id"] for d in expected]
            assert out.active.tolist() == [d["active"] for d in expected]
            assert out.ages.tolist() == [d["age"] for d in expected]


box = st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(0, 1e4), st.floats(0, 1),
                st.integers(1, 3), st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(box, max_size=8), max_size=8), st.integers(-1, 3), st.booleans())
def test_ids_unique_and_never_reused(frames, max_age, hungarian):
    tracker = Tracker(TrackerConfig(max_age=max_age, hungarian=hungarian))
    seen_new = set()
    previous = set()
    for frame in frames:
        out = tracker.step(dets(*frame))
        ids = out.ids.tolist()
        assert len(ids) == len(set(ids)) and all(i > 0 for i in ids)
        fresh = set(ids) - previous
        assert not (fresh & seen_new)  # a new id is never one handed out before
        seen_new |= fresh
        previous = set(ids)
