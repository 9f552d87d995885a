"""PyTorch backend: runs a checkpoint directly (eager, CPU or CUDA), the reference the other backends match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...artifacts import ArtifactMeta, sha256_file
from ...errors import CtrtError
from ...model.checkpoint import load_checkpoint
from ...model.seg import HarDNetSeg


def checkpoint_meta(model: HarDNetSeg, source: str, digest: str, input_hw: tuple[int, int],
                    random_weights: bool = False, builtin: str = "") -> ArtifactMeta:
    config = model.config
    return ArtifactMeta(kind="checkpoint", model=config.to_dict(), input_size=input_hw, batch=1, precision="fp32",
                        source=source, source_sha256=digest, inputs=config.inputs, outputs=list(config.heads),
                        random_weights=random_weights, builtin=builtin)


class TorchBackend:
    """Runs a HarDNetSeg, or the export wrapper around it, on tensors fed in ``meta.inputs`` order."""

    last_ms = device_bytes = run_on_device = None  # capabilities of TensorRT only

    def __init__(self, model: nn.Module, meta: ArtifactMeta, device: str = "auto") -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
            raise CtrtError(f"device {device}: PyTorch here supports cpu" + (" and cuda" if torch.cuda.is_available() else ""),
                            option="device")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.meta = meta
        self.name = f"pytorch ({device})"

    @classmethod
    def from_checkpoint(cls, path: Path, input_hw: tuple[int, int], device: str = "auto",
                        allow_partial: bool = False) -> TorchBackend:
        loaded = load_checkpoint(path, allow_partial)
        return cls(loaded.model, checkpoint_meta(loaded.model, path.name, sha256_file(path), input_hw), device)

    def __enter__(self) -> TorchBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {name: torch.from_numpy(feed[name]).to(self.device) for name in self.meta.inputs}
        with torch.inference_mode():
            # HarDNetSeg takes image/pre_img/pre_hm by name (a checkpoint may lack either previous-frame layer);
            # export wrappers take the meta's inputs in order.
            outputs = self.model(**tensors) if isinstance(self.model, HarDNetSeg) else self.model(*tensors.values())
        return {name: out.cpu().numpy() for name, out in zip(self.meta.outputs, outputs)}
