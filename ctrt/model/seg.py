"""HarDNetSeg with CenterTrack heads and the CenterTrack-HarDNet fork's current/previous-frame input layers."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .hardnet import BACKBONES, ConvLayer, HarDBlock, build_base

HM_PRIOR_BIAS = -2.19


def _resize(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # Python ints keep the Resize target static in a traced ONNX graph (TensorRT wants static shapes).
    size = (int(like.shape[2]), int(like.shape[3]))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class HarDNetSeg(nn.Module):
    """Returns the heads as a list in ``config.heads`` order (the reference's ``trt=True`` output).

    Attribute registration order reproduces the reference state_dict order. No file is read here: the reference
    loads ImageNet weights from the working directory, we leave that to the checkpoint.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        spec = BACKBONES[config.arch]
        self.config = config
        self.skip_nodes = spec.skip_nodes
        self.split = spec.split_channels
        self.skip_levels = spec.skip_levels
        # Rewrites the Sum-to-1 context so an FP16 engine cannot overflow; identical in exact arithmetic.
        self.fp16_safe_context = False
        # Heads computed in FP32 when the rest of the network runs in FP16 (an FP16 export keeps "hm" here).
        self.float_heads: set[str] = set()

        self.base, base_ch = build_base(spec)
        self.last_pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.last_proj = ConvLayer(base_ch, spec.last_proj, kernel=1)
        self.last_blk = HarDBlock(spec.last_proj * 3, spec.last_block[0], spec.grmul, spec.last_block[1])
        self.denseBlocksUp = nn.ModuleList()
        self.conv1x1_up = nn.ModuleList()
        self.avg9x9 = nn.AvgPool2d(kernel_size=9, stride=1, padding=4)

        prev_ch = self.last_blk.out_channels
        for i in range(3):
            cat_ch = prev_ch + spec.skip_channels[3 - i] if i < spec.skip_levels else prev_ch
            self.conv1x1_up.append(ConvLayer(cat_ch, spec.up_channels[i], kernel=1))
            block_in = (spec.up_channels[i] - self.split[i]) * 3
            block = HarDBlock(block_in, spec.up_growth[i], spec.grmul, spec.up_layers[i])
            self.denseBlocksUp.append(block)
            prev_ch = block.out_channels
        head_in = prev_ch + sum(self.split)

        stem_ch = spec.skip_channels[0] // 2
        if config.stem:
            self.base_layer = ConvLayer(3, stem_ch, kernel=3, stride=2)
        if config.pre_img:
            self.pre_img_layer = ConvLayer(3, stem_ch, kernel=3, stride=2)
        if config.pre_hm:
            self.pre_hm_layer = ConvLayer(1, stem_ch, kernel=3, stride=2)

        for head, classes in config.heads.items():
            width = max(128, classes * 4)
            self.add_module(
                head,
                nn.Sequential(
                    nn.Conv2d(head_in, width, kernel_size=3, padding=1, bias=True),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(width, classes, kernel_size=1, bias=True),
                ),
            )

    def init_weights(self, seed: int) -> None:
        """Seeded stand-in for trained weights: Kaiming-uniform convs, zero biases, the heatmap prior bias.

        The reference uses ImageNet weights for the backbone; without them Kaiming keeps activations in a realistic
        range through the ~100 layers, which PyTorch's default init does not.
        """
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    bound = math.sqrt(6.0 / (module.weight[0].numel()))
                    module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 2 * bound - bound)
                    if module.bias is not None:
                        module.bias.zero_()
            if "hm" in self.config.heads:
                final = self.get_submodule("hm.2")
                assert isinstance(final, nn.Conv2d) and final.bias is not None
                final.bias.fill_(HM_PRIOR_BIAS)

    def exportable(self, half: bool = False) -> HarDNetSeg:
        """A copy set up as ctrt exports it: the FP16-safe context, and with ``half`` FP16 weights with the heatmap
        head kept FP32. This model is left as it is (it stays the reference the export is checked against)."""
        export = copy.deepcopy(self)
        export.fp16_safe_context = True
        if half:
            export.half()
            if "hm" in self.config.heads:
                export.get_submodule("hm").float()
                export.float_heads = {"hm"}
        return export

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        """cat[x, 9x9 mean, x / (spatial sum + 0.1)]."""
        pooled = self.avg9x9(x)
        if self.fp16_safe_context:
            area = int(x.shape[2]) * int(x.shape[3])
            # x / (sum + 0.1) == (x / (mean + 0.1/area)) / area, and no intermediate exceeds the feature range.
            # In an FP16 network the mean over a whole map is taken in FP32 (an FP16 accumulation drifts).
            wide = x.float() if x.dtype != torch.float32 else x
            normed = (wide / (wide.mean((2, 3), keepdim=True) + 0.1 / area) * (1.0 / area)).to(x.dtype)
        else:
            normed = x / (x.sum((2, 3), keepdim=True) + 0.1)
        return torch.cat([x, pooled, normed], 1)

    def forward(
        self, image: torch.Tensor, pre_img: torch.Tensor | None = None, pre_hm: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        if self.config.stem:
            x = self.base_layer(image)
            if pre_img is not None:
                x = x + self.pre_img_layer(pre_img)
            if pre_hm is not None:
                x = x + self.pre_hm_layer(pre_hm)
            first = 1
        else:
            x, first = image, 0

        skips = []
        for i in range(first, len(self.base)):
            x = self.base[i](x)
            if i in self.skip_nodes:
                skips.append(x)

        x = self.last_blk(self._context(self.last_pool(self.last_proj(x))))
        shortcuts = []
        for i in range(3):
            skip = skips[3 - i]
            x = _resize(x, skip)
            if i < self.skip_levels:
                x = torch.cat([x, skip], 1)
            x = self.conv1x1_up[i](x)
            if self.split[i] > 0:
                keep = int(x.shape[1]) - self.split[i]
                shortcuts.append(x[:, keep:])
                x = x[:, :keep]
            x = self.denseBlocksUp[i](self._context(x))

        # Later shortcuts go first: final order is split(1), split(0), x.
        x = torch.cat([_resize(s, x) for s in reversed(shortcuts)] + [x], 1)
        return [self.get_submodule(head)(x.float() if head in self.float_heads else x) for head in self.config.heads]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
