"""Pre-processing and pre_hm rendering against independent computations and hand-computed values."""

import numpy as np
import pytest

from ctrt.export.parity import sample_image
from ctrt.model.config import MEAN_BGR, STD_BGR
from ctrt.runtime.prehm import PreHeatmapRenderer, gaussian_kernel, gaussian_radius
from ctrt.runtime.preprocess import FrameGeometry, Preprocessor, letterbox_affine
import centertrack_reference as ref

MEAN, STD = np.array(MEAN_BGR, np.float32), np.array(STD_BGR, np.float32)


def bilinear(image, x, y):
    """Sample a uint8 image at real coordinates, zero outside (warpAffine's constant border)."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    out = np.zeros((len(x), 3))
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        out[inside] += weight[inside, None] * image[yi[inside], xi[inside]]
    return out


@pytest.mark.parametrize("asset, size", [("chelsea", (256, 320)), ("rocket", (512, 512)), ("coffee", (320, 192))])
def test_warped_pixels_are_bilinear_samples_of_the_affine_preimage(asset, size):
    frame = sample_image(asset)
    h, w = size
    out = np.empty((3, h, w), np.float32)
    geometry = Preprocessor(h, w)(frame, out)
    inverse = np.linalg.inv(np.vstack([geometry.to_input, [0, 0, 1]]))[:2]
    rng = np.random.default_rng(0)
    u, v = rng.integers(0, w, 2000), rng.integers(0, h, 2000)
    src = inverse @ np.stack([u, v, np.ones_like(u)])
    expected = (bilinear(frame, src[0], src[1]) / 255.0 - MEAN) / STD
    got = out[:, v, u].T
    # OpenCV interpolates with 1/32-pixel positions and 15-bit weights: up to ~2 grey levels on sharp edges.
    assert np.abs(got - expected).max() <= 2.5 / 255 / STD.min()
    assert np.median(np.abs(got - expected)) <= 0.5 / 255 / STD.min()


def test_letterbox_is_isotropic_centred_and_inverts():
    geometry = FrameGeometry.build(1280, 720, 512, 512)
    m = geometry.to_input
    assert np.allclose(m[:, :2], np.eye(2) * 0.4) and np.allclose(m @ [640, 360, 1], [256, 256])
    # Output map (stride 4) back to the frame: factor 1280 / 128 = 10.
    assert np.allclose(geometry.output_to_frame @ [64, 64, 1], [640, 360], atol=1e-4)
    assert np.allclose(geometry.output_to_frame[:, :2], np.eye(2) * 10, atol=1e-5)
    # Non-square input: CenterTrack's factor uses the input width even when the height differs.
    assert np.allclose(letterbox_affine((320, 240), 640, 320, 192)[:, :2], np.eye(2) * 0.5)


def test_normalisation_matches_centertrack_formula_bit_for_bit():
    frame = sample_image("rocket")  # 640x427: letterboxed above and below
    pre = Preprocessor(384, 384)
    out = np.empty((3, 384, 384), np.float32)
    pre(frame, out)
    warped = pre.warp(frame)
    expected = ((warped / 255.0 - MEAN) / STD).astype(np.float32).transpose(2, 0, 1)
    assert np.array_equal(out, expected)
    assert np.array_equal(out[:, 0, 0], ((0 - MEAN) / STD).astype(np.float32))  # letterbox border is black


def test_gaussian_radius_hand_computed():
    # h = w = 10: r1 = (20 + sqrt(400 - 4*100*0.3/1.7)) / 2 = 19.075, r2 = (40 + sqrt(1600 - 16*30)) / 2 = 36.733,
    # r3 = (-28 + sqrt(784 + 4*2.8*30)) / 2 = (-28 + sqrt(1120)) / 2 = 2.7332 -> the minimum.
    assert gaussian_radius(np.array(10.0), np.array(10.0)) == pytest.approx((-28 + 1120**0.5) / 2, abs=1e-12)
    # h = 20, w = 60: r3 = (-112 + sqrt(112^2 + 4*2.8*0.3*1200)) / 2 = (-112 + sqrt(16576)) / 2 = 8.3739
    assert gaussian_radius(np.array(20.0), np.array(60.0)) == pytest.approx((-112 + 16576**0.5) / 2, abs=1e-12)
    for h, w in ((1, 1), (3, 7), (41, 13), (300, 200)):
        assert gaussian_radius(np.array(float(h)), np.array(float(w))) == ref.gaussian_radius(h, w)


def test_gaussian_kernel_hand_computed():
    k1 = gaussian_kernel(1)  # diameter 3, sigma 0.5: exp(-d^2 / 0.5)
    assert np.allclose(k1, [[np.exp(-4), np.exp(-2), np.exp(-4)], [np.exp(-2), 1, np.exp(-2)],
                            [np.exp(-4), np.exp(-2), np.exp(-4)]])
    k4 = gaussian_kernel(4)  # sigma 1.5; the corner exp(-32/4.5) = 8.2e-4 stays (only < eps*max is zeroed)
    assert k4.shape == (9, 9) and k4[4, 4] == 1 and k4[0, 0] == pytest.approx(np.exp(-32 / 4.5))


def test_pre_hm_draws_clipped_boxes_with_element_wise_max():
    renderer = PreHeatmapRenderer(64, 64)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    out = np.full((64, 64), 7.0, np.float32)
    boxes = np.array([[10, 10, 20, 20], [12, 8, 26, 22], [-30, 50, 5, 90], [30, 30, 30, 40]], np.float32)
    renderer.render(boxes, identity, out)
    # Box 1: 10x10 -> radius 2 at (15, 15). Box 2: 14x14 -> radius 3 (r3 = 3.83) at (19, 15). Overlaps take the max.
    k2, k3 = gaussian_kernel(2).astype(np.float32), gaussian_kernel(3).astype(np.float32)
    assert out[15, 15] == 1 and out[15, 19] == 1
    assert out[15, 16] == k2[2, 3]  # box 1's 0.487 beats box 2's 0.037
    assert out[15, 17] == k3[3, 1] > k2[2, 4]  # box 2's 0.230 beats box 1's 0.056
    assert out[15, 18] == k3[3, 2] and out[15, 12] == 0  # outside box 1's radius, box 2 alone
    # Box 3 is clipped to x in [0, 5], y in [50, 63]: centre (2, 56).
    r = int(gaussian_radius(np.array(13.0), np.array(5.0)))
    assert out[56, 2] == 1 and out[56, 2 + r] > 0 and out[56, 2 + r + 1] == 0
    # Box 4 has zero width: not drawn. Everything else was cleared.
    assert out[35, 30] == 0 and out[0, 63] == 0 and out.max() == 1
    renderer.render(np.zeros((0, 4), np.float32), identity, out)
    assert not out.any()
