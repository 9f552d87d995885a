"""Tracker scenarios with the ids written down, CenterTrack parity on random sequences, and properties."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ctrt.errors import CtrtError
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


def active_ids(tracks):
    return tracks[tracks.active > 0].ids.tolist()


def walker(t, score=0.9, speed=10):
    """One object moving right at ``speed`` px a frame on y=50, 20 px square, its tracking offset exact."""
    return (10 + speed * t, 50, 20, score, 1, (-speed if t else 0, 0))


def test_coasting_finds_a_moving_object_again_after_an_occlusion():
    # Seen at t=0,1, hidden t=2..4, seen again at t=5 forty px further: where it would be at its speed.
    frames = [dets(walker(t)) if t not in (2, 3, 4) else dets() for t in range(7)]
    coasting = Tracker(TrackerConfig(max_age=5, coast=True))
    assert [active_ids(coasting.step(f)) for f in frames] == [[1], [1], [], [], [], [1], [1]]
    assert coasting.tracks.centers[0, 0] == 70  # and it moved on with the object
    standing = Tracker(TrackerConfig(max_age=5))  # CenterTrack's kept track waits where it was last seen
    assert [active_ids(standing.step(f)) for f in frames] == [[1], [1], [], [], [], [2], [2]]


def test_coasting_a_stopped_object_keeps_it_in_place():
    # Stop-and-go: moves, stops (offset 0) at x=30, is missed for two frames while stopped, then walks on.
    path = [(10, 0), (20, -10), (30, -10), (30, 0), None, None, (30, 0), (40, -10), (50, -10)]
    frames = [dets((step[0], 50, 20, 0.9, 1, (step[1], 0))) if step else dets() for step in path]
    tracker = Tracker(TrackerConfig(max_age=3, coast=True))
    assert [active_ids(tracker.step(f)) for f in frames] == [[1], [1], [1], [1], [], [], [1], [1], [1]]


def test_a_coasting_track_hidden_behind_a_nearer_person_is_kept_past_max_age():
    # Two people walking together, the farther one (bottom at y=65) behind the nearer (bottom at y=80) and not
    # detected for 8 frames, longer than max_age: it is hidden, not gone, and takes its detection back. Alone in the
    # open, the same 8 frames unseen end it.
    def person(t, y, size, score):
        return (20 + 10 * t, y, size, score, 1, (-10 if t else 0, 0))

    seen = [t not in range(3, 11) for t in range(13)]
    together = Tracker(TrackerConfig(max_age=5, coast=True))
    ids = [sorted(active_ids(together.step(dets(person(t, 60, 40, 0.9), *[person(t, 50, 30, 0.8)] * s))))
           for t, s in enumerate(seen)]
    assert ids[:3] + ids[11:] == [[1, 2]] * 5 and ids[3:11] == [[1]] * 8
    alone = Tracker(TrackerConfig(max_age=5, coast=True))
    ids = [active_ids(alone.step(dets(*[person(t, 50, 30, 0.8)] * s))) for t, s in enumerate(seen)]
    assert ids[:3] == [[1]] * 3 and ids[11:] == [[2]] * 2


def test_a_coasting_track_yields_to_one_seen_last_frame():
    # a (x=50) and b (x=80) at t=0; b unseen at t=1; at t=2 a detection at x=68 is nearer to b's place (12 px)
    # than to a's (16 px). a, seen last frame, takes it; CenterTrack's distance alone would give it to b.
    frames = [dets((50, 50, 20, 0.9, 1, (0, 0)), (80, 50, 20, 0.9, 1, (0, 0))), dets((52, 50, 20, 0.9, 1, (-2, 0))),
              dets((68, 50, 20, 0.9, 1, (0, 0)))]
    coasting, plain = Tracker(TrackerConfig(max_age=5, coast=True)), Tracker(TrackerConfig(max_age=5))
    assert [active_ids(coasting.step(f)) for f in frames] == [[1, 2], [1], [1]]
    assert [active_ids(plain.step(f)) for f in frames] == [[1, 2], [1], [2]]


def test_a_narrow_gate_keeps_a_person_stepping_out_from_behind_off_the_track_in_front():
    # a walks right (40 px box) and is tracked; at t=2 b steps out from behind it, scoring higher than a, its
    # previous centre 16 px from a's track; a's own detection is 1 px from it. In score order b comes first: within
    # CenterTrack's gate (40 px) it takes a's track and a gets a new id; within a quarter of it (10 px) it cannot.
    frames = [dets((100 + 6 * t, 300, 40, 0.42, 1, (-6 if t else 0, 0))) for t in range(2)]
    frames.append(dets((112, 300, 40, 0.42, 1, (-5, 0)), (122, 302, 40, 0.45, 1, (0, -2))))
    narrow, wide = (Tracker(TrackerConfig(gate=gate)) for gate in (0.25, 1.0))
    assert [ids_by_lane(narrow.step(f)) for f in frames][-1] == {300: 1, 302: 2}
    assert [ids_by_lane(wide.step(f)) for f in frames][-1] == {300: 2, 302: 1}


def test_an_unseen_tracks_gate_widens_with_the_frames_it_was_missed():
    # Seen at t=0,1 at 6 px a frame, hidden for ten frames, found again 13 px from where coasting put it: beyond a
    # quarter of its 40 px box, within the gate widened by 5% a frame (15 px). One seen last frame would not reach.
    frames = [dets((100 + 6 * t, 300, 40, 0.9, 1, (-6 if t else 0, 0))) for t in range(2)] + [dets()] * 10
    tracker = Tracker(TrackerConfig(max_age=20, coast=True, gate=0.25))
    for f in frames:
        tracker.step(f)
    coasted = tracker.tracks.centers[0, 0]
    assert coasted == 100 + 6 * 11  # moved on through the ten frames
    assert active_ids(tracker.step(dets((coasted + 6 + 13, 300, 40, 0.9, 1, (-6, 0))))) == [1]
    followed = Tracker(TrackerConfig(gate=0.25))
    for f in frames[:2]:
        followed.step(f)
    assert active_ids(followed.step(dets((112 + 13, 300, 40, 0.9, 1, (-6, 0))))) == [2]


def test_the_gate_opens_for_a_model_whose_offsets_miss_by_more():
    # A model whose tracking offsets miss by 9 px (either way) on a 40 px box: after 30 such frames the gate has
    # opened to 4 x that spread, so a 14 px miss (beyond the quarter box --gate asks for) still continues the track.
    tracker = Tracker(TrackerConfig(gate=0.25))
    for t in range(30):
        tracker.step(dets((100 + 6 * t, 300, 40, 0.9, 1, (-6 + (9 if t % 2 else -9) if t else 0, 0))))
    assert tracker.gate == pytest.approx(4 * 9 / 40, abs=0.01)
    assert active_ids(tracker.step(dets((100 + 6 * 30, 300, 40, 0.9, 1, (-6 + 14, 0))))) == [1]


def test_coasting_tells_crossing_objects_apart_by_their_velocity():
    # a walks right, b left, 6 px a frame on one line; they cross at t=3, where a's tracking offset errs by 4.5 px:
    # its previous centre (100.5) is then nearer b's track (104) than its own (96). The tracks' velocities say a
    # should now be at 102 and b at 98, which is where a's detection is.
    frames = []
    for t in range(5):
        a = (84 + 6 * t, 300, 40, 0.9, 1, (-1.5 if t == 3 else -6 if t else 0, 0))
        b = (116 - 6 * t, 301, 40, 0.8, 1, (6 if t else 0, 0))
        frames.append(dets(a, b))
    coasting, plain = Tracker(TrackerConfig(max_age=5, coast=True)), Tracker(TrackerConfig(max_age=5))
    assert [ids_by_lane(coasting.step(f)) for f in frames] == [{300: 1, 301: 2}] * 5
    assert [ids_by_lane(plain.step(f)) for f in frames][3] == {300: 2, 301: 1}


def test_byte_low_score_detections_continue_tracks_but_never_start_one():
    # The object is half covered at t=2,3 (score 0.2); a lone 0.2 false positive appears at t=2 far away.
    frames = [dets(walker(t, 0.2 if t in (2, 3) else 0.9), *([(300, 300, 20, 0.2, 1, (0, 0))] if t == 2 else []))
              for t in range(6)]
    byte = Tracker(TrackerConfig(low_thresh=0.1))
    assert [active_ids(byte.step(f)) for f in frames] == [[1], [1], [1], [1], [1], [1]]
    # CenterTrack's tracker never sees them (the decoder drops scores <= 0.3): the object comes back as id 2.
    plain = Tracker()
    visible = [f[f.scores > 0.3] for f in frames]
    assert [active_ids(plain.step(f)) for f in visible] == [[1], [1], [], [], [2], [2]]


def test_byte_high_scores_associate_first():
    # Two detections point exactly at one track, a 0.9 and a 0.2 (optimal assignment sees a tie): the 0.9 one
    # takes it in the first pass, and the 0.2 one, left without a track, is dropped rather than started.
    tracker = Tracker(TrackerConfig(low_thresh=0.1, hungarian=True))
    tracker.step(dets((50, 50, 20, 0.9, 1, (0, 0))))
    out = tracker.step(dets((56, 50, 20, 0.9, 1, (-6, 0)), (51, 50, 20, 0.2, 1, (-1, 0))))
    assert out[out.ids == 1].scores.tolist() == [np.float32(0.9)] and len(out) == 1


def test_robust_preset_with_byte_keeps_crossing_ids_through_a_covered_frame():
    # b passes behind a: half covered at t=3 (score 0.15), wholly at t=4 (no detection), out again at t=5.
    tracker = Tracker(TrackerConfig.from_options(preset="robust", low_thresh=0.1))
    history = []
    for t in range(9):
        a = (10 + 10 * t, 48, 20, 0.9, 1, (-10 if t else 0, 0))
        b = (90 - 10 * t, 52, 20, 0.15 if t == 3 else 0.8, 1, (10 if t else 0, 0))
        out = tracker.step(dets(a, *([b] if t != 4 else [])))
        history.append({(int(x), int(y)): i for (x, y), i in zip(out.centers.round().tolist(), out.ids.tolist())})
    assert [h[10 + 10 * t, 48] for t, h in enumerate(history)] == [1] * 9
    assert [h[90 - 10 * t, 52] for t, h in enumerate(history)] == [2] * 9  # coasted through t=4 to where b was
    plain = Tracker()  # CenterTrack's: b is lost at t=3 and comes back as a new track
    ids = [plain.step(dets(a, *([b] if 0.15 != b[3] and t != 4 else []))).ids.tolist()
           for t, (a, b) in enumerate(((10 + 10 * t, 48, 20, 0.9, 1, (-10 if t else 0, 0)),
                                       (90 - 10 * t, 52, 20, 0.15 if t == 3 else 0.8, 1, (10 if t else 0, 0)))
                                      for t in range(9))]
    assert ids[2] == [1, 2] and ids[5] == [1, 3]


def shown_ids(tracks):
    return tracks[tracks.shown].ids.tolist()


def test_min_hits_hides_one_frame_tracks_but_not_a_track_found_again():
    # After two empty updates: a walker seen at t=0..2, missed at t=3, found again at t=4; a lone false positive at t=1.
    frames = [dets(), dets()] + [dets(*([walker(t)] if t != 3 else []),
                                      *([(300, 300, 20, 0.9, 1, (0, 0))] if t == 1 else [])) for t in range(6)]
    confirmed = Tracker(TrackerConfig(max_age=5, coast=True, min_hits=2))
    assert [shown_ids(confirmed.step(f)) for f in frames] == [[], [], [], [1], [1], [], [1], [1]]
    everything = Tracker(TrackerConfig(max_age=5, coast=True))  # CenterTrack reports a track from its first frame
    assert [shown_ids(everything.step(f)) for f in frames] == [[], [], [1], [1, 2], [1], [], [1], [1]]


def test_the_first_min_hits_updates_show_every_track_as_sort_does():
    # Nothing can be confirmed before min_hits updates: whoever is in view when a run starts is shown at once (a loop
    # at a fifth of the camera's rate would otherwise hide them for its first 5 camera frames), a reset starts again.
    frames = [dets(walker(t), *([(300, 300, 20, 0.9, 1, (0, 0))] if t == 1 else [])) for t in range(4)]
    tracker = Tracker(TrackerConfig(max_age=5, coast=True, min_hits=2))
    assert [shown_ids(tracker.step(f)) for f in frames] == [[1], [1, 2], [1], [1]]
    tracker.reset()
    assert shown_ids(tracker.step(frames[0])) == [1]
    late = Tracker(TrackerConfig(max_age=5, coast=True, min_hits=2))
    assert [shown_ids(late.step(f)) for f in [dets(), dets(), *frames]] == [[], [], [], [1], [1], [1]]


def test_presets_and_overrides():
    robust = TrackerConfig.from_options(preset="robust")
    assert (robust.max_age, robust.hungarian, robust.coast, robust.low_thresh, robust.min_hits, robust.gate) == (
        45, False, True, None, 2, 0.25)
    assert TrackerConfig.from_options() == TrackerConfig()  # CenterTrack's, exactly
    assert TrackerConfig.from_options(preset="robust", max_age=5, coast=False).max_age == 5
    with pytest.raises(CtrtError, match="tracker 'fast': choose centertrack, robust"):
        TrackerConfig.from_options(preset="fast")
    with pytest.raises(CtrtError, match="low_thresh 0.4 must be below the track threshold 0.3"):
        TrackerConfig.from_options(low_thresh=0.4)
    with pytest.raises(CtrtError, match=r"gate 1.5: give more than 0, up to 1 \(a share of the box size\)"):
        TrackerConfig.from_options(gate=1.5)


def test_varying_gaps_move_a_coasting_track_by_the_camera_frames_between_updates():
    # A 10 px/frame walker tracked at camera frames 0, 2, 3, (7 missed), 9: the offsets span each gap. Told the
    # gaps, the track's velocity is 10 px a frame and it coasts 40 px over the 4-frame gap, onto the walker; counted
    # as one frame each, its velocity is ~19 px an update and it coasts to x=59, 21 px off: the narrow gate
    # refuses and the walker gets a new id.
    seen = [0, 2, 3, None, 9]
    gaps = [1, 2, 1, 4, 2]
    frames = [dets((10 + 10 * t, 50, 20, 0.9, 1, (-10 * gap if i else 0, 0))) if t is not None else dets()
              for i, (t, gap) in enumerate(zip(seen, gaps))]
    config = TrackerConfig(max_age=10, coast=True, gate=0.25)
    told = Tracker(config)
    assert [active_ids(told.step(f, gap)) for f, gap in zip(frames, gaps)] == [[1], [1], [1], [], [1]]
    assert told.tracks.velocity[0, 0] == pytest.approx(10.0)
    untold = Tracker(config)
    assert [active_ids(untold.step(f)) for f in frames] == [[1], [1], [1], [], [2]]


def test_max_age_counts_camera_frames_however_many_updates_they_took():
    frames = [dets(walker(0)), dets(), dets(), dets()]
    for gap, kept in ((1, [1, 1, 1, 1]), (3, [1, 1, 0, 0])):  # max_age 6: unseen for 1..3 frames or 3 frames
        tracker = Tracker(TrackerConfig(max_age=6))
        assert [len(tracker.step(f, gap)) for f in frames] == kept
        assert tracker.tracks.unseen.tolist() == ([3] if gap == 1 else [])


@given(st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_centertrack_defaults_give_the_same_tracks_at_any_gaps(seed):
    # CenterTrack's defaults keep no track unseen and never coast: the gap cannot change them (its exactness against
    # the reference tracker is the test above, at the gap of 1 every frame has).
    rng = np.random.default_rng(seed)
    frames = [dets(*[(float(x), float(y), 20.0, float(s), 1, (float(dx), float(dy)))
                     for x, y, s, dx, dy in zip(rng.uniform(0, 200, n), rng.uniform(0, 200, n), rng.uniform(0.2, 1, n),
                                                rng.normal(0, 5, n), rng.normal(0, 5, n))])
              for n in rng.integers(0, 6, 12)]
    every, gapped = Tracker(), Tracker()
    for f, gap in zip(frames, rng.integers(2, 6, len(frames))):
        a, b = every.step(f), gapped.step(f, int(gap))
        assert a.ids.tolist() == b.ids.tolist() and np.array_equal(a.boxes, b.boxes)
