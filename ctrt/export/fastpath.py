"""The GPU fast path: CenterTrack's pre-processing and top-K decode inside the exported graph.

``--preprocess-in-graph`` replaces ``image``/``pre_img`` by the raw camera frames ``frame``/``pre_frame`` (uint8,
[N, H0, W0, 3], BGR): the letterbox is a GridSample over a grid precomputed from the same affine the CPU path uses,
followed by /255, -mean, /std. ``--decode-in-graph`` ends the graph with the 3x3 peak test on the logits, one TopK
over classes and positions, sigmoid on the K winners and GatherElements of the heads, so only K-sized tensors leave
the device. Only ops TensorRT 8.5+ parses: Cast, Transpose, GridSample, Mul, Add, MaxPool, Equal, Where, TopK,
Sigmoid, Floor, Div, Sub, GatherElements, Relu; the uint8 frames go straight into a Cast to float, so no intermediate
tensor is UINT8.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model.config import MEAN_BGR, STD_BGR, ModelConfig
from ..runtime.decode import TOPK_OUTPUTS
from ..runtime.preprocess import FrameGeometry
from .onnx_export import HEATMAP_FLOOR, ExportOptions


def letterbox_grid(source_hw: tuple[int, int], input_hw: tuple[int, int]) -> np.ndarray:
    """[1, H, W, 2] GridSample coordinates (align_corners=False) of each input pixel's pre-image in the frame."""
    h0, w0 = source_hw
    h, w = input_hw
    to_input = FrameGeometry.build(w0, h0, h, w).to_input
    inverse = np.linalg.inv(np.vstack([to_input, [0.0, 0.0, 1.0]]))[:2]
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = inverse[0, 0] * u + inverse[0, 1] * v + inverse[0, 2]
    y = inverse[1, 0] * u + inverse[1, 1] * v + inverse[1, 2]
    return np.stack([(2 * x + 1) / w0 - 1, (2 * y + 1) / h0 - 1], axis=-1)[None].astype(np.float32)


class InGraph(nn.Module):
    """Wraps a model (``HarDNetSeg.exportable()`` for export) with the graph's I/O as ``options`` asks: raw frames in
    with ``source_hw``, K-sized outputs with ``topk``, FP32 I/O around an FP16 body with ``half``. Inputs and
    outputs are named in ``input_names`` / ``output_names``."""

    grid: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, model: nn.Module, config: ModelConfig, options: ExportOptions) -> None:
        super().__init__()
        self.model, self.heads, self.model_inputs = model, list(config.heads), config.inputs
        self.topk, self.fp16 = options.topk, options.half
        self.preprocess = options.source_hw is not None
        if options.source_hw is not None:
            input_hw = (options.input_h, options.input_w)
            self.register_buffer("grid", torch.from_numpy(letterbox_grid(options.source_hw, input_hw)))
            std_t = torch.tensor(STD_BGR, dtype=torch.float32).view(1, 3, 1, 1)
            self.register_buffer("scale", 1.0 / (255.0 * std_t))
            self.register_buffer("shift", -torch.tensor(MEAN_BGR, dtype=torch.float32).view(1, 3, 1, 1) / std_t)
        renamed = {"image": "frame", "pre_img": "pre_frame"} if self.preprocess else {}
        self.input_names = [renamed.get(name, name) for name in self.model_inputs]
        self.output_names = list(TOPK_OUTPUTS) if self.topk else self.heads

    def _letterbox(self, frame: torch.Tensor) -> torch.Tensor:
        # Cast first: from TensorRT 8.6 on, the ONNX parser refuses any node that produces a UINT8 tensor that is not
        # a graph output, and 8.5 takes UINT8 only into a Cast to FP32/FP16.
        x = frame.float().permute(0, 3, 1, 2)
        grid = self.grid.expand(x.shape[0], -1, -1, -1)
        warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return warped * self.scale + self.shift

    def _decode(self, outputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        hm = outputs["hm"]
        _, c, h, w = (int(v) for v in hm.shape)  # the batch stays symbolic (-1 below): --dynamic-batch
        k = self.topk
        assert k is not None
        peak = F.max_pool2d(hm, 3, stride=1, padding=1) == hm
        candidates = torch.where(peak, hm, torch.full_like(hm, HEATMAP_FLOOR)).reshape(-1, c * h * w)
        logits, index = torch.topk(candidates, k)
        flat = index.float()  # exact below 2^24 positions; float keeps TensorRT away from INT64 arithmetic
        classes = torch.floor(flat / (h * w))
        pixel = flat - classes * (h * w)
        ys = torch.floor(pixel / w)
        xs = pixel - ys * w
        gather_at = pixel.long().unsqueeze(1)

        def gather(name: str, first: int) -> torch.Tensor:
            head = outputs[name][:, first : first + 2].reshape(-1, 2, h * w)
            return torch.gather(head, 2, gather_at.expand(-1, 2, k)).permute(0, 2, 1)

        size = F.relu(gather("wh", 0))
        if "reg" in outputs:
            offset = gather("reg", 0)
        elif outputs["wh"].shape[1] == 4:
            offset = gather("wh", 2)
        else:
            offset = torch.full_like(size, 0.5)
        tracking = gather("tracking", 0) if "tracking" in outputs else torch.zeros_like(offset)
        return [torch.sigmoid(logits), classes, xs, ys, offset, size, tracking]

    def forward(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        named = dict(zip(self.input_names, tensors))
        feed = {}
        for model_name, name in zip(self.model_inputs, self.input_names):
            value = named[name]
            value = self._letterbox(value) if name in ("frame", "pre_frame") else value
            feed[model_name] = value.half() if self.fp16 else value
        outputs = dict(zip(self.heads, (o.float() for o in self.model(**feed)) if self.fp16 else self.model(**feed)))
        return self._decode(outputs) if self.topk else [outputs[h] for h in self.heads]
