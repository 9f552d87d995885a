"""Decode: planted peaks are recovered exactly; random heads match CenterTrack's decode; nothing crashes on junk."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from ctrt.runtime import decode as decode_module
from ctrt.runtime.decode import Decoder
from ctrt.runtime.preprocess import FrameGeometry
import centertrack_reference as ref

H, W, C = 32, 40, 80
GEOMETRY = FrameGeometry.build(160, 128, 128, 160)  # frame = input size, so output px * 4 = frame px


def blank_heads():
    return {"hm": np.full((C, H, W), -10.0, np.float32), "reg": np.zeros((2, H, W), np.float32),
            "wh": np.zeros((2, H, W), np.float32), "tracking": np.zeros((2, H, W), np.float32)}


def plant(heads, c, y, x, logit, reg=(0, 0), wh=(0, 0), tracking=(0, 0)):
    heads["hm"][c, y, x] = logit
    heads["reg"][:, y, x], heads["wh"][:, y, x], heads["tracking"][:, y, x] = reg, wh, tracking


def test_planted_peaks_positions_classes_sizes_offsets_exact():
    heads = blank_heads()
    plant(heads, 5, 10, 7, 2.0, reg=(0.25, 0.5), wh=(8, 6), tracking=(1.5, -2))
    heads["hm"][5, 10, 8] = 1.9  # a lower neighbour is suppressed by the 3x3 peak test
    plant(heads, 0, 0, 0, 1.0, reg=(0.5, 0.5), wh=(-3, 4))  # corner peak, negative width clamps to 0
    plant(heads, 79, 31, 39, 0.5, wh=(2, 2))
    plant(heads, 3, 20, 20, -1.0, wh=(2, 2))  # sigmoid 0.27 < 0.3: dropped
    dets = Decoder(C, H, W)(heads, GEOMETRY)
    assert dets.classes.tolist() == [6, 1, 80]
    assert np.allclose(dets.scores, 1 / (1 + np.exp(-np.array([2.0, 1.0, 0.5]))), atol=1e-7)
    assert np.allclose(dets.centers, [[28, 40], [0, 0], [156, 124]], atol=1e-4)
    assert np.allclose(dets.boxes[0], [13, 30, 45, 54], atol=1e-4)  # (7.25 -/+ 4, 10.5 -/+ 3) * 4
    assert np.allclose(dets.boxes[1], [2, -6, 2, 10], atol=1e-4)  # width 0: x1 == x2
    assert np.allclose(dets.tracking[0], [6, -8], atol=1e-4)
    assert dets.ids.tolist() == [0, 0, 0]


def test_plateau_peaks_topk_and_threshold():
    heads = blank_heads()
    heads["hm"][2, 5, 5] = heads["hm"][2, 5, 6] = 3.0  # equal neighbours: both are peaks, as with max_pool == x
    dets = Decoder(C, H, W)(heads, GEOMETRY)
    assert sorted(dets.centers[:, 0].tolist()) == [20, 24]
    rng = np.random.default_rng(0)
    heads = blank_heads()
    ys, xs = np.meshgrid(np.arange(0, H, 2), np.arange(0, W, 2), indexing="ij")
    heads["hm"][1, ys, xs] = rng.uniform(0, 5, ys.shape)  # 320 isolated peaks
    decoder = Decoder(C, H, W, k=50, threshold=0.5)
    dets = decoder(heads, GEOMETRY)
    best = np.sort(heads["hm"][1, ys, xs].ravel())[::-1][:50]
    assert len(dets) == 50 and np.allclose(dets.scores, 1 / (1 + np.exp(-best)), atol=1e-7)
    assert np.all(np.diff(dets.scores) <= 0)


def random_heads(rng, sparse):
    heads = {"hm": (rng.standard_normal((C, H, W)) - (4.5 if sparse else 0)).astype(np.float32),
             "reg": rng.random((2, H, W), np.float32), "wh": (rng.standard_normal((2, H, W)) * 10).astype(np.float32),
             "tracking": rng.standard_normal((2, H, W)).astype(np.float32)}
    return heads


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("sparse_limit", [0, decode_module.SPARSE_LIMIT])
def test_matches_centertrack_decode_on_random_heads(sparse, sparse_limit):
    rng = np.random.default_rng(3 if sparse else 4)
    for _ in range(3):
        heads = random_heads(rng, sparse)
        ours = Decoder(C, H, W, k=100, threshold=0.3, sparse_limit=sparse_limit)(heads, GEOMETRY)
        theirs = ref.decode(heads, 100, GEOMETRY.output_to_frame, 0.3)
        assert len(ours) == len(theirs) > 0
        assert ours.classes.tolist() == [d["class"] for d in theirs]
        assert np.allclose(ours.scores, [d["score"] for d in theirs], rtol=0, atol=2e-7)
        assert np.abs(ours.boxes - np.array([d["bbox"] for d in theirs])).max() <= 1e-4
        assert np.abs(ours.centers - np.array([d["ct"] for d in theirs])).max() <= 1e-4
        assert np.abs(ours.tracking - np.array([d["tracking"] for d in theirs])).max() <= 1e-4


finite_or_not = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(max_examples=150, deadline=None)
@given(hm=arrays(np.float32, (3, 6, 7), elements=finite_or_not),
       rest=arrays(np.float32, (6, 6, 7), elements=finite_or_not),
       k=st.integers(1, 200), threshold=st.floats(0, 1), sparse_limit=st.sampled_from([0, 10**6]))
def test_decode_never_crashes_and_emits_only_finite_detections(hm, rest, k, threshold, sparse_limit):
    heads = {"hm": hm, "reg": rest[0:2], "wh": rest[2:4], "tracking": rest[4:6]}
    decoder = Decoder(3, 6, 7, k=k, threshold=threshold, sparse_limit=sparse_limit)
    dets = decoder(heads, FrameGeometry.build(28, 24, 24, 28))
    assert len(dets) <= min(k, hm.size)
    if np.isfinite(hm).all():  # both peak finders agree wherever the heatmap is a heatmap
        other = Decoder(3, 6, 7, k=k, threshold=threshold, sparse_limit=10**6 - sparse_limit)
        assert sorted(decoder.peaks(hm).tolist()) == sorted(other.peaks(hm).tolist())
    assert np.isfinite(dets.boxes).all() and np.isfinite(dets.centers).all() and np.isfinite(dets.tracking).all()
    assert ((dets.classes >= 1) & (dets.classes <= 3)).all() and (dets.scores > threshold).all()
