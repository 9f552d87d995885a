"""Shared fixtures: models exported once per session through the real CLI, and CLI helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ctrt.cli import app
from ctrt.model.config import ModelConfig
from ctrt.model.seg import HarDNetSeg

SMALL = (128, 160)


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def seeded_model(config: ModelConfig, seed: int = 0) -> HarDNetSeg:
    """Random weights plus non-trivial BatchNorm statistics, so BN is not the identity."""
    model = HarDNetSeg(config)
    model.init_weights(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            elif key.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
    return model.eval()


@pytest.fixture(scope="session")
def checkpoint_85(tmp_path_factory) -> Path:
    """A checkpoint as CenterTrack's trainer saves it: {'epoch', 'state_dict'} with DataParallel's 'module.' prefix."""
    path = tmp_path_factory.mktemp("ckpt") / "model_last.pth"
    state = seeded_model(ModelConfig(85)).state_dict()
    torch.save({"epoch": 70, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return path


@pytest.fixture(scope="session")
def onnx_85(tmp_path_factory, checkpoint_85) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "model_last_128x160.onnx"
    result = invoke("export", checkpoint_85, "--input-size", "128x160", "-o", out)
    assert result.exit_code == 0, result.output
    return out
