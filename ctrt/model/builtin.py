"""The built-in demo model: seeded random HarDNet-85 whose heads are fitted to ctrt's generated demo scenes.

It sees the generated demo (photographs of a cat, a cup, a rocket and an astronaut moving over a blurred photo) and
nothing else: blind to the real world. Only the fitted layers ship (``assets/demo_heads.npz``: the heatmap head, and
the 1x1 outputs of the other heads); the rest is rebuilt from the seed at load. ``benchmarks/demo_model.py``
reproduces the asset from the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CtrtError
from .config import BUILTINS, preset
from .seg import HarDNetSeg

DEMO_ASSET = Path(__file__).resolve().parent.parent / "assets" / "demo_heads.npz"
DEMO_SEED = 0  # the seed of `ctrt export --random-init`
FIT_SIZE = (256, 256)  # the demo's model size, H x W
FITTED_LAYERS = ("hm.0", "hm.2", "reg.2", "wh.2", "tracking.2")
# Classes the scene never shows get this logit (sigmoid 5e-5): they stay silent.
ABSENT_CLASS_BIAS = -10.0


def seeded_backbone() -> HarDNetSeg:
    """HarDNet-85 with the seeded weights every demo layer starts from."""
    model = HarDNetSeg(preset("hardnet_85"))
    model.init_weights(DEMO_SEED)
    return model.eval()


def builtin_model(name: str) -> HarDNetSeg:
    if name not in BUILTINS:
        raise CtrtError(f"builtin {name!r}: choose {', '.join(BUILTINS)}", option="builtin")
    model = seeded_backbone()
    with np.load(DEMO_ASSET) as asset:
        classes = asset["classes"] - 1  # CenterTrack's 1-based classes -> hm channels
        with torch.no_grad():
            for layer in FITTED_LAYERS:
                conv = model.get_submodule(layer)
                assert isinstance(conv, torch.nn.Conv2d) and conv.bias is not None
                weight = torch.from_numpy(asset[f"{layer}.weight"].astype(np.float32))
                bias = torch.from_numpy(asset[f"{layer}.bias"].astype(np.float32))
                if layer == "hm.0":
                    conv.weight.copy_(weight)
                    conv.bias.copy_(bias)
                elif layer == "hm.2":
                    conv.weight.zero_()
                    conv.bias.fill_(ABSENT_CLASS_BIAS)
                    conv.weight[classes, :, 0, 0] = weight
                    conv.bias[classes] = bias
                else:
                    conv.weight[:, :, 0, 0] = weight
                    conv.bias.copy_(bias)
    return model
