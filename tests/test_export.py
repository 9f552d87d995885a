"""`ctrt export`: verified ONNX that TensorRT can build, metadata, and no partial files on failure."""

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ctrt.artifacts import read_meta
from ctrt.model.checkpoint import load_checkpoint
from conftest import invoke, message_lines

# Ops a plain HarDNetSeg graph contains after simplification.
PLAIN_OPS = {"Conv", "Relu", "AveragePool", "Resize", "Concat", "Slice", "ReduceMean", "ReduceSum", "Div", "Add",
             "Mul", "Constant", "Shape", "Gather", "Unsqueeze", "Cast", "Split"}


def parity_rows(output: str) -> list[tuple[str, str, float]]:
    return [(m[0], m[1], float(m[2])) for m in re.findall(r"│ (random|photo)\s+│ (\w+)\s+│\s+([\d.e+-]+) │", output)]


def test_export_checkpoint_verified_against_pytorch(onnx_85, checkpoint_85):
    model = onnx.load(str(onnx_85))
    graph = model.graph
    assert [i.name for i in graph.input] == ["image", "pre_img", "pre_hm"]
    assert [o.name for o in graph.output] == ["hm", "reg", "wh", "tracking"]
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in list(graph.input) + list(graph.output)}
    assert dims["image"] == [1, 3, 128, 160] and dims["pre_hm"] == [1, 1, 128, 160]
    assert dims["hm"] == [1, 80, 32, 40] and dims["tracking"] == [1, 2, 32, 40]
    assert model.opset_import[0].version == 17
    ops = {n.op_type for n in graph.node}
    assert ops <= PLAIN_OPS and "ReduceSum" not in ops  # the Sum-to-1 context is exported in its FP16-safe form

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    pools = [attrs(n) for n in graph.node if n.op_type == "AveragePool"]
    assert sum(p.get("ceil_mode", 0) for p in pools) == 1
    assert all(p.get("count_include_pad") == 1 for p in pools if any(p.get("pads", [0])))
    resizes = [attrs(n) for n in graph.node if n.op_type == "Resize"]
    assert resizes and all(r["coordinate_transformation_mode"] == b"align_corners" and r["mode"] == b"linear"
                           for r in resizes)

    meta = read_meta(onnx_85)
    assert meta.kind == "onnx" and meta.input_size == (128, 160) and meta.source == "model_last.pth"
    assert len(meta.source_sha256) == 64 and not meta.random_weights
    embedded = {p.key: p.value for p in model.metadata_props}
    assert json.loads(embedded["ctrt"])["source_sha256"] == meta.source_sha256

    # Independent of the CLI's own check: ORT on a fresh input against the PyTorch checkpoint.
    torch_model = load_checkpoint(checkpoint_85).model
    rng = np.random.default_rng(5)
    feed = {"image": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_img": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_hm": rng.random((1, 1, 128, 160), np.float32)}
    session = ort.InferenceSession(str(onnx_85), providers=["CPUExecutionProvider"])
    ours = session.run(None, feed)
    with torch.no_grad():
        expected = torch_model(*(torch.from_numpy(v) for v in feed.values()))
    for got, want in zip(ours, expected):
        assert np.abs(got - want.numpy()).max() <= 1e-4


@pytest.mark.slow
def test_random_init_hardnet68_cli_prints_parity_and_next_step(tmp_path):
    out = tmp_path / "h68.onnx"
    result = invoke("export", "--random-init", "--arch", "hardnet_68", "--input-size", "128x160", "-o", out)
    assert result.exit_code == 0, result.output
    rows = parity_rows(result.output)
    assert {(case, name) for case, name, _ in rows} == {
        (c, h) for c in ("random", "photo") for h in ("hm", "reg", "wh", "tracking")}
    assert all(err <= 1e-4 for _, _, err in rows)
    assert "random (seeded) weights" in result.output and f"ctrt run {out}" in result.output
    assert read_meta(out).random_weights and read_meta(out).config.arch == 68


@pytest.mark.slow
def test_dynamic_batch_runs_any_batch(tmp_path, checkpoint_85):
    out = tmp_path / "dyn.onnx"
    result = invoke("export", checkpoint_85, "--input-size", "64x64", "--dynamic-batch", "-o", out)
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"
    rng = np.random.default_rng(1)
    feed = {"image": rng.standard_normal((3, 3, 64, 64), np.float32),
            "pre_img": rng.standard_normal((3, 3, 64, 64), np.float32),
            "pre_hm": rng.random((3, 1, 64, 64), np.float32)}
    hm = session.run(["hm"], feed)[0]
    model = load_checkpoint(checkpoint_85).model
    with torch.no_grad():
        expected = model(*(torch.from_numpy(v) for v in feed.values()))[0].numpy()
    assert hm.shape == (3, 80, 16, 16) and np.abs(hm - expected).max() <= 1e-4


@pytest.mark.parametrize("args, message", [
    (["--atol", "1e-12"], "parity check failed: "),
    (["--opset", "3"], "--opset 3: ctrt exports opsets 11 to 20"),
    (["--input-size", "100x200"], "nearest valid: 96x192, 96x224, 128x192, 128x224"),
    (["--input-size", "big"], "expected HxW"),
])
@pytest.mark.slow
def test_failures_leave_no_files(tmp_path, checkpoint_85, args, message):
    out = tmp_path / "sub" / "model.onnx"
    result = invoke("export", checkpoint_85, "--input-size", "64x64", *args, "-o", out)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(message_lines(result.output)) == 1
    assert not out.exists() and not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_parity_tolerance_is_relative_only_beyond_one(tmp_path):
    """A trained wh head predicts sizes up to ~100 output px; FP32 summation order alone moves those by ~1e-5
    relative, so the check scales the tolerance by max(1, max |output|) — and stays absolute for logits."""
    from ctrt.export.parity import check_parity
    from ctrt.model.config import ModelConfig
    from conftest import seeded_model

    class Fixed:
        def __init__(self, outputs):
            self.outputs = outputs

        def __call__(self, feed):
            return self.outputs

    ref = {"hm": np.full((1, 2), 0.5, np.float32), "wh": np.full((1, 2), 100.0, np.float32)}
    got = {"hm": ref["hm"] + 2e-4, "wh": ref["wh"] + 2e-4}
    rows = {r.output: r.ok for r in check_parity(Fixed(ref), Fixed(got), {"case": {}})}
    assert rows == {"hm": False, "wh": True}

    model = seeded_model(ModelConfig(85))
    with torch.no_grad():
        model.get_submodule("wh.2").weight.mul_(300)  # box sizes of a trained model's range
    ckpt = tmp_path / "big_wh.pth"
    torch.save({"epoch": 1, "state_dict": model.state_dict()}, ckpt)
    result = invoke("export", ckpt, "--input-size", "128x160", "-o", tmp_path / "big_wh.onnx")
    assert result.exit_code == 0, result.output
    wh_rows = [r for r in parity_rows(result.output) if r[1] == "wh"]
    assert max(r[2] for r in wh_rows) > 1e-4  # would have failed an absolute 1e-4
