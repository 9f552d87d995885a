"""Checkpoint loading: CenterTrack's layout, safety, and one clear line for every bad file."""

import pickle

import pytest
import torch

from ctrt.errors import CtrtError
from ctrt.model.checkpoint import load_checkpoint
from ctrt.model.config import PRESETS, ModelConfig
from conftest import invoke, message_lines, seeded_model


def test_centertrack_checkpoint_with_module_prefix_loads_exactly(checkpoint_85):
    loaded = load_checkpoint(checkpoint_85)
    assert loaded.config == ModelConfig(85)
    assert loaded.epoch == 70
    reference = seeded_model(ModelConfig(85))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded.model(x, x, x[:, :1])[0], reference(x, x, x[:, :1])[0])


def test_bare_state_dicts_of_other_variants_are_recognised(tmp_path):
    for config in (ModelConfig(68, {"hm": 1, "reg": 2, "wh": 2, "tracking": 2}, pre_img=True, pre_hm=False),
                   PRESETS["centernet_hardnet_85"]):
        path = tmp_path / "bare.pth"
        torch.save(seeded_model(config).state_dict(), path)
        assert load_checkpoint(path).config == config


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    state = seeded_model(ModelConfig(85)).state_dict()
    for key in [k for k in state if k.startswith("last_blk.layers.")][:8]:
        del state[key]
    state["extra.weight"] = torch.zeros(3)
    state["conv1x1_up.0.conv.weight"] = torch.zeros(256, 1000, 1, 1)
    path = tmp_path / "partial.pth"
    torch.save({"epoch": 1, "state_dict": state}, path)
    with pytest.raises(CtrtError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "8 missing: last_blk.layers.0.conv.weight" in message and "(+3 more)" in message
    assert "1 unexpected: extra.weight" in message
    assert "1 mis-shaped: conv1x1_up.0.conv.weight (256, 1000, 1, 1) vs (256, 1498, 1, 1)" in message
    loaded = load_checkpoint(path, allow_partial=True)
    assert len(loaded.missing) == 8 and loaded.mismatched


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def bad_files(tmp_path, checkpoint_85):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(checkpoint_85.read_bytes()[:100_000])
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    code = tmp_path / "code.pth"
    torch.save({"epoch": 1, "state_dict": {"a": torch.zeros(1)}, "hook": Payload()}, code)
    raw_pickle = tmp_path / "raw.pth"
    raw_pickle.write_bytes(pickle.dumps(Payload(), protocol=2))
    foreign = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, foreign)
    return {
        truncated: "truncated or corrupt",
        text: "not a readable PyTorch checkpoint",
        code: "refusing to unpickle",
        raw_pickle: "refusing to unpickle",
        foreign: "is not a HarDNet-68/85",
        tmp_path / "missing.pth": "checkpoint not found",
    }


@pytest.mark.parametrize("command", ["export", "inspect"])
def test_bad_files_fail_with_one_line_through_the_cli(tmp_path, checkpoint_85, capsys, command):
    for path, expected in bad_files(tmp_path, checkpoint_85).items():
        result = invoke(command, path, *(["-o", tmp_path / "out.onnx"] if command == "export" else []))
        assert result.exit_code == 2, result.output
        lines = message_lines(result.output)
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.output
    assert "this must never run" not in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["truncated.pth", "notes.pth", "code.pth", "raw.pth", "resnet.pth"])


def test_inspect_checkpoint_reports_inferred_model(checkpoint_85):
    result = invoke("inspect", checkpoint_85)
    assert result.exit_code == 0
    for text in ("hardnet_85", "hm:80, reg:2, wh:2, tracking:2", "image, pre_img, pre_hm", "37,739,614",
                 "694 entries, 694 match", "70"):
        assert text in result.output
