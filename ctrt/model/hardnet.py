"""HarDNet building blocks and backbone, laid out exactly as CenterNet-HarDNet names them.

Module names, child order and channel arithmetic follow the reference so that its state_dict keys and shapes load
unchanged; the per-depth numbers live in ``BACKBONES`` instead of if/else branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BN_MOMENTUM = 0.1


class ConvLayer(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> ReLU, children named ``conv``, ``norm``, ``relu``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.add_module(
            "conv",
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        )
        self.add_module("norm", nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM))
        self.add_module("relu", nn.ReLU(inplace=True))


def harmonic_links(n_layers: int, in_channels: int, growth_rate: float, grmul: float) -> list[tuple[list[int], int, int]]:
    """For 1-based layer L of a HarDBlock: (links nearest first, input width, output width).

    Layer L reads every earlier layer L - 2^i that divides it; each link beyond the first widens the layer by
    ``grmul``; widths are rounded to even numbers the way the reference does (``int(int(w + 1) / 2) * 2``).
    """
    widths = [in_channels]
    plan = []
    for layer in range(1, n_layers + 1):
        out = float(growth_rate)
        links = []
        for i in range(10):
            step = 2**i
            if layer % step == 0:
                links.append(layer - step)
                if i > 0:
                    out *= grmul
        out_ch = int(int(out + 1) / 2) * 2
        widths.append(out_ch)
        plan.append((links, sum(widths[k] for k in links), out_ch))
    return plan


class HarDBlock(nn.Module):
    """Harmonic dense block: output = concat of the odd 1-based layers and the last layer (input dropped)."""

    def __init__(self, in_channels: int, growth_rate: float, grmul: float, n_layers: int) -> None:
        super().__init__()
        plan = harmonic_links(n_layers, in_channels, growth_rate, grmul)
        self.links = [links for links, _, _ in plan]
        self.layers = nn.ModuleList(ConvLayer(inch, outch) for _, inch, outch in plan)
        self.kept = [i + 1 for i in range(n_layers) if i % 2 == 0 or i == n_layers - 1]
        self.out_channels = sum(plan[i - 1][2] for i in self.kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for links, layer in zip(self.links, self.layers):
            inputs = [outputs[k] for k in links]
            outputs.append(layer(torch.cat(inputs, 1) if len(inputs) > 1 else inputs[0]))
        return torch.cat([outputs[i] for i in self.kept], 1)


@dataclass(frozen=True)
class BackboneSpec:
    """One HarDNet depth: the backbone table plus the HarDNetSeg decoder numbers that go with it."""

    first_ch: tuple[int, int]
    ch_list: tuple[int, ...]
    growth: tuple[int, ...]
    n_layers: tuple[int, ...]
    last_proj: int
    last_block: tuple[int, int]  # growth, layers
    skip_nodes: tuple[int, ...]
    skip_channels: tuple[int, ...]  # widths of the base outputs at skip_nodes
    skip_levels: int
    up_growth: tuple[int, int, int]
    up_layers: tuple[int, int, int]
    up_channels: tuple[int, int, int]  # conv1x1_up widths, split-off channels included
    split_channels: tuple[int, int, int] = (32, 32, 0)
    grmul: float = 1.7


BACKBONES: dict[int, BackboneSpec] = {
    85: BackboneSpec(
        first_ch=(48, 96), ch_list=(192, 256, 320, 480, 720), growth=(24, 24, 28, 36, 48),
        n_layers=(8, 16, 16, 16, 16), last_proj=256, last_block=(80, 8), skip_nodes=(1, 3, 8, 13),
        skip_channels=(96, 214, 458, 784), skip_levels=3, up_growth=(64, 48, 28), up_layers=(8, 8, 4),
        up_channels=(256, 192, 96),
    ),
    68: BackboneSpec(
        first_ch=(32, 64), ch_list=(128, 256, 320, 640), growth=(14, 16, 20, 40),
        n_layers=(8, 16, 16, 16), last_proj=192, last_block=(72, 8), skip_nodes=(1, 3, 8, 11),
        skip_channels=(64, 124, 328, 654), skip_levels=2, up_growth=(48, 32, 20), up_layers=(8, 8, 4),
        up_channels=(256, 128, 64),
    ),
}


def build_base(spec: BackboneSpec) -> tuple[nn.ModuleList, int]:
    """The ``base`` ModuleList (stem conv s2, conv, avgpool s2, then block / 1x1 transition / pools) and its width."""
    base = nn.ModuleList(
        [
            ConvLayer(3, spec.first_ch[0], kernel=3, stride=2),
            ConvLayer(spec.first_ch[0], spec.first_ch[1], kernel=3),
            nn.AvgPool2d(kernel_size=3, stride=2, padding=1),
        ]
    )
    ch = spec.first_ch[1]
    last = len(spec.n_layers) - 1
    for i, (growth, n) in enumerate(zip(spec.growth, spec.n_layers)):
        block = HarDBlock(ch, growth, spec.grmul, n)
        base.append(block)
        ch = block.out_channels
        if i != last:
            base.append(ConvLayer(ch, spec.ch_list[i], kernel=1))
            ch = spec.ch_list[i]
        # Down-sampling after the first and third blocks only; the first one rounds odd sizes up.
        if i == 0:
            base.append(nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True))
        elif i == 2:
            base.append(nn.AvgPool2d(kernel_size=2, stride=2))
    return base, ch
