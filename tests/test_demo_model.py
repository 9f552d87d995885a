"""The built-in demo model: seeded backbone, fitted heads, and tracks that follow the photographs of the demo."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ctrt.demo import DEMO_RUN_OPTIONS, DemoScene, make_demo_video
from ctrt.eval.clear_mot import score_sequence
from ctrt.model.builtin import DEMO_ASSET, FITTED_LAYERS, builtin_model, seeded_backbone
from conftest import invoke

SEED = 100  # not among the fitting seeds (0-49) or the calibration seeds (50-53): a scene the model never saw


def test_only_the_fitted_layers_differ_from_the_seeded_network():
    demo, seeded = builtin_model("demo").state_dict(), seeded_backbone().state_dict()
    changed = {key.rsplit(".", 1)[0] for key in demo if not torch.equal(demo[key], seeded[key])}
    assert changed == set(FITTED_LAYERS)
    assert DEMO_ASSET.stat().st_size <= 2_000_000


def test_export_says_what_the_model_is(tmp_path, demo_onnx):
    meta = json.loads(demo_onnx.with_name(demo_onnx.name + ".json").read_text())
    assert meta["builtin"] == "demo" and meta["source"] == "builtin:demo" and not meta["random_weights"]
    result = invoke("inspect", demo_onnx)
    assert "builtin:demo" in result.output


def truth_and_tracks(lines: list[dict], scene: DemoScene):
    truth = [(t.boxes, t.ids, t.counted) for t in (scene.frame(i)[1] for i in range(len(lines)))]
    shown = [[r for r in f["results"] if r["shown"]] for f in lines]
    tracks = [(np.array([r["bbox"] for r in rs], np.float64).reshape(-1, 4), np.array([r["tracking_id"] for r in rs]))
              for rs in shown]
    return truth, tracks


@pytest.mark.slow
def test_tracks_follow_the_photographs_of_an_unseen_scene(tmp_path):
    demo = tmp_path / "demo.onnx"  # at its own size, 256x256: what it was fitted at and what this test scores
    assert invoke("export", "--builtin", "demo", "--input-size", "256x256", "--no-check", "-o", demo).exit_code == 0
    frames = 30
    video = make_demo_video(tmp_path / "scene.avi", frames, seed=SEED)
    result = invoke("run", demo, "--source", video, "--save-json", tmp_path / "t.jsonl", *DEMO_RUN_OPTIONS)
    assert result.exit_code == 0, result.output
    assert "the built-in demo model" in result.output and "blind to the real world" in result.output
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    score = score_sequence(*truth_and_tracks(lines, DemoScene(seed=SEED))).summary()
    assert score["objects"] > 100  # four photographs, visible most of the time
    assert score["mota"] >= 0.8 and score["precision"] >= 0.9, score
    assert score["min_id_consistency"] >= 0.9, score  # each photograph keeps one id in >= 90% of its frames


def test_random_init_stays_random(tmp_path):
    result = invoke("export", "--random-init", "--arch", "hardnet_68", "--input-size", "64x64", "--no-check",
                    "-o", tmp_path / "r.onnx")
    assert result.exit_code == 0 and "random (seeded) weights" in result.output
    meta = json.loads((tmp_path / "r.onnx.json").read_text())
    assert meta["random_weights"] and meta["builtin"] == ""


@pytest.mark.slow
def test_demo_command_exports_once_and_tracks_one_or_several_videos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("demo", "--frames", "4")
    assert result.exit_code == 0, result.output
    assert "wrote export/hardnet_85_demo_256x256.onnx" in result.output and "the built-in demo model" in result.output
    assert f"tracker: {' '.join(DEMO_RUN_OPTIONS)}, the demo model's operating point" in result.output
    assert len((tmp_path / "runs/demo/tracks.jsonl").read_text().splitlines()) == 4
    result = invoke("demo", "--frames", "3", "--streams", "2")
    assert result.exit_code == 0, result.output
    assert "wrote export/" not in result.output  # the export is reused while the demo weights are unchanged
    assert "2 streams on onnxruntime" in result.output
    for name in ("input-0", "input-1"):
        assert len((tmp_path / f"runs/demo/tracks/{name}.jsonl").read_text().splitlines()) == 3
