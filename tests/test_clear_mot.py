"""CLEAR MOT scoring against hand-computed values."""

import numpy as np

from ctrt.eval.clear_mot import score_sequence

A = np.array([[0, 0, 10, 10]], np.float64)
B = np.array([[50, 50, 60, 60]], np.float64)


def frame(boxes, ids, counted=None):
    boxes = np.array(boxes, np.float64).reshape(-1, 4)
    return boxes, np.array(ids), np.ones(len(ids), bool) if counted is None else np.array(counted)


def test_perfect_tracks_score_one():
    truth = [frame([A[0], B[0]], [1, 2])] * 4
    tracks = [(np.array([A[0], B[0]]), np.array([7, 8]))] * 4
    score = score_sequence(truth, tracks)
    assert score.mota == 1.0 and score.precision == 1.0 and score.id_consistency() == {1: 1.0, 2: 1.0}


def test_a_switch_a_miss_and_a_false_positive_each_count_once():
    truth = [frame([A[0], B[0]], [1, 2])] * 4
    tracks = [(np.array([A[0], B[0]]), np.array([7, 8])),
              (np.array([A[0], B[0]]), np.array([9, 8])),  # object 1 switches to track 9
              (np.array([B[0]]), np.array([8])),  # object 1 missed
              (np.array([A[0], B[0], [100, 100, 120, 120]]), np.array([9, 8, 3]))]  # one false positive
    score = score_sequence(truth, tracks)
    assert (score.id_switches, score.misses, score.false_positives, score.objects) == (1, 1, 1, 8)
    assert score.mota == 1 - 3 / 8 and score.precision == 7 / 8
    assert score.id_consistency()[1] == 2 / 4  # track 9 in two of its four frames
    assert score.one_id()[1] == 3 / 4  # shown under another id (7) in one frame; the missed frame has no other id


def test_objects_not_counted_are_dont_care():
    truth = [frame([A[0], B[0]], [1, 2], [True, False])]
    score = score_sequence(truth, [(np.array([A[0], B[0]]), np.array([1, 2]))])
    assert (score.objects, score.hits, score.false_positives, score.misses) == (1, 1, 0, 0)
    score = score_sequence(truth, [(np.array([A[0]]), np.array([1]))])
    assert score.misses == 0 and score.mota == 1.0
