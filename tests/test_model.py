"""HarDNetSeg reproduces the CenterTrack-HarDNet fork's architecture: keys, shapes, counts and forward."""

import pytest
import torch

from ctrt.model.config import PRESETS, ModelConfig
from ctrt.model.hardnet import HarDBlock, harmonic_links
from ctrt.model.seg import HarDNetSeg, count_parameters
from conftest import seeded_model


def top_level_order(keys):
    order = []
    for key in keys:
        parts = key.split(".")
        name = ".".join(parts[:2]) if parts[0] in ("base", "conv1x1_up") else parts[0]
        if not order or order[-1] != name:
            order.append(name)
    return order


def test_hardnet85_state_dict_matches_reference_layout():
    state = HarDNetSeg(ModelConfig(85)).state_dict()
    assert len(state) == 694
    assert count_parameters(HarDNetSeg(ModelConfig(85))) == 37_739_614
    assert sum(1 for k in state if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))) == 355
    assert top_level_order(state) == [
        "base.0", "base.1", "base.3", "base.4", "base.6", "base.7", "base.8", "base.9", "base.11", "base.12",
        "base.13", "last_proj", "last_blk", "denseBlocksUp", "conv1x1_up.0", "conv1x1_up.1", "conv1x1_up.2",
        "base_layer", "pre_img_layer", "pre_hm_layer", "hm", "reg", "wh", "tracking",
    ]
    shapes = {
        "base.0.conv.weight": (48, 3, 3, 3), "base_layer.conv.weight": (48, 3, 3, 3),
        "pre_hm_layer.conv.weight": (48, 1, 3, 3), "last_blk.layers.7.conv.weight": (394, 1216, 3, 3),
        "conv1x1_up.0.conv.weight": (256, 1498, 1, 1), "hm.0.weight": (320, 200, 3, 3),
        "hm.2.weight": (80, 320, 1, 1), "reg.0.weight": (128, 200, 3, 3), "hm.2.bias": (80,),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert [k for k in state if k.startswith("denseBlocksUp.2.layers.") and k.endswith("conv.weight")] == [
        f"denseBlocksUp.2.layers.{i}.conv.weight" for i in range(4)]


def test_hardnet68_and_centernet_parameter_counts():
    assert count_parameters(HarDNetSeg(ModelConfig(68))) == 21_107_998
    # CenterNet-HarDNet's detector: no stem, no previous-frame layers, heads hm:80 wh:4 (README: 37.2M).
    assert count_parameters(HarDNetSeg(PRESETS["centernet_hardnet_85"])) == 37_274_988
    assert len(HarDNetSeg(ModelConfig(68)).base) == 12 and len(HarDNetSeg(ModelConfig(85)).base) == 14


def test_harmonic_block_widths_match_reference_arithmetic():
    plan = harmonic_links(8, 96, 24, 1.7)
    assert [out for _, _, out in plan] == [24, 40, 24, 70, 24, 40, 24, 118]
    assert [inp for _, inp, _ in plan] == [96, 120, 40, 160, 70, 94, 40, 230]
    assert plan[7][0] == [7, 6, 4, 0]  # nearest first: fixes the concat order, hence the weight layout
    assert HarDBlock(96, 24, 1.7, 8).out_channels == 214


@pytest.mark.slow
@pytest.mark.parametrize("arch", [85, 68])
def test_forward_shapes_and_head_order(arch):
    model = seeded_model(ModelConfig(arch, {"hm": 3, "wh": 2, "tracking": 2, "reg": 2}))
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        outputs = model(x, torch.randn(1, 3, 96, 160), torch.rand(1, 1, 96, 160))
    assert [tuple(o.shape) for o in outputs] == [(1, 3, 24, 40), (1, 2, 24, 40), (1, 2, 24, 40), (1, 2, 24, 40)]


@pytest.mark.slow
def test_stem_replaces_base0_and_previous_frame_layers_are_used():
    model = seeded_model(ModelConfig(85))
    x, pre_img, pre_hm = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        before = model(x, pre_img, pre_hm)[0]
        model.base[0].conv.weight.mul_(-3.0)  # kept in the state_dict, never run (the fork starts at base[1])
        assert torch.equal(model(x, pre_img, pre_hm)[0], before)
        assert not torch.equal(model(x, pre_img, torch.zeros_like(pre_hm))[0], before)
        assert not torch.equal(model(x, None, pre_hm)[0], before)


def test_exportable_copy_leaves_the_model_alone():
    model = seeded_model(ModelConfig(85))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert {v.dtype for v in before.values()} == {torch.float32, torch.int64}  # BatchNorm counts batches
    export = model.exportable(half=True)
    assert export.fp16_safe_context and export.float_heads == {"hm"}
    assert export.get_submodule("hm.0").weight.dtype == torch.float32
    assert export.get_submodule("wh.0").weight.dtype == torch.float16
    assert not model.fp16_safe_context and not model.float_heads
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


def test_fp16_safe_context_equals_sum_to_one_in_fp32_and_survives_fp16():
    model = seeded_model(ModelConfig(85))
    x = torch.rand(1, 256, 128, 128) * 8 + 4  # a stride-4 sized map: every channel's sum (~1.3e5) overflows FP16
    reference = model._context(x)
    model.fp16_safe_context = True
    safe = model._context(x)
    assert torch.allclose(safe, reference, rtol=1e-6, atol=1e-12)

    half, area = x.half(), 128 * 128
    original_fp16 = half / (half.sum((2, 3), keepdim=True) + 0.1)
    safe_fp16 = half / (half.mean((2, 3), keepdim=True) + 0.1 / area) * (1.0 / area)
    assert torch.isinf(half.sum((2, 3))).all() and original_fp16.abs().max() == 0  # the feature collapses to zero
    assert torch.allclose(safe_fp16.float(), reference[:, 512:], rtol=2e-2, atol=1e-7)
