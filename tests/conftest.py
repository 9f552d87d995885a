"""Shared fixtures: models exported once per session through the real CLI, and CLI helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ctrt.cli import app
from ctrt.model.config import ModelConfig

SMALL = (128, 160)


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


PHASE = re.compile(r"[a-z-]+: .* \(\d+\.\d s\)")  # a long command's progress line, when not on a terminal


def message_lines(output: str) -> list[str]:
    """What a command said, without the progress lines of its phases (one error line must be all that is left)."""
    return [line for line in output.strip().splitlines() if not PHASE.fullmatch(line)]


def sigterm_a_track_loop(prelude: str, run: str) -> int:
    """In a fresh interpreter: ``prelude`` (imports ctrt, sys), then ``run = <run>`` iterated as a user's loop
    prints each frame's index; SIGTERM once three frames came. Returns the exit code."""
    import signal
    import subprocess
    import sys
    import textwrap

    loop = textwrap.dedent(f"""
        run = {run}
        try:
            with run:
                for r in run:
                    print(r.index, flush=True)
        except KeyboardInterrupt:
            pass
        sys.exit(run.report.exit_status)
    """)
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(prelude) + loop], stdout=subprocess.PIPE,
                               text=True, cwd=Path(__file__).resolve().parent.parent)
    assert process.stdout is not None
    for _ in range(3):
        process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    process.stdout.read()
    return process.wait(timeout=60)


@pytest.fixture
def chromium():
    """Headless Chromium's command line and environment, its profile and temporary files in a folder of their own
    (short: its socket's path must fit a Unix socket's), removed afterwards."""
    import os
    import shutil
    import tempfile

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is missing: make test installs it (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="chromium-") as home:
        yield ([binary, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={home}"],
               {**os.environ, "TMPDIR": home})


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_tracks(got: list[dict], expected: list[dict]) -> None:
    """Frame by frame: identical track ids, boxes within 1e-4 px."""
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        assert [r["tracking_id"] for r in a["results"]] == [r["tracking_id"] for r in b["results"]]
        if a["results"]:
            boxes_a = np.array([r["bbox"] for r in a["results"]])
            boxes_b = np.array([r["bbox"] for r in b["results"]])
            assert np.abs(boxes_a - boxes_b).max() < 1e-4


def seeded_model(config: ModelConfig, seed: int = 0):
    """Random weights plus non-trivial BatchNorm statistics, so BN is not the identity (PyTorch is imported here:
    tests that need no checkpoint run without it)."""
    import torch

    from ctrt.model.seg import HarDNetSeg

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
    import torch

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


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory) -> Path:
    """The built-in demo model (detections that mean something on generated scenes), dynamic batch, 224x224: a
    quarter faster than its own 256x256, and it still finds the demo scenes' objects."""
    out = tmp_path_factory.mktemp("demo") / "demo_dynamic.onnx"
    result = invoke("export", "--builtin", "demo", "--input-size", "224x224", "--dynamic-batch", "-o", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def demo_onnx_batch3(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo_b3.onnx"
    result = invoke("export", "--builtin", "demo", "--input-size", "224x224", "--batch", "3", "--no-check", "-o", out)
    assert result.exit_code == 0, result.output
    return out


# Boxes (x, y, w, h) drawn by hand around the main objects of scikit-image's sample photographs.
COCO_OBJECTS = {
    "astronaut": [(140, 0, 300, 512, 1), (350, 300, 110, 200, 44)],
    "chelsea": [(60, 0, 330, 300, 16)],
    "coffee": [(200, 20, 300, 300, 42)],
    "rocket": [(280, 100, 90, 310, 5)],
    "motorcycle_left": [(60, 120, 500, 350, 4)],
    "motorcycle_right": [(40, 120, 500, 350, 4)],
}


@pytest.fixture(scope="session")
def coco_dir(tmp_path_factory):
    """A small COCO-format dataset of real photographs (scikit-image's samples) with a real annotation file."""
    import json

    import cv2
    from skimage import data

    root = tmp_path_factory.mktemp("coco")
    images = root / "val2017"
    images.mkdir()
    left, right, _ = data.stereo_motorcycle()
    photos = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket(),
              "motorcycle_left": left, "motorcycle_right": right, "hubble": data.hubble_deep_field()[:500, :600],
              "ihc": data.immunohistochemistry(), "retina": data.retina()[::3, ::3],
              "camera": np.stack([data.camera()] * 3, axis=2), "colorwheel": data.colorwheel()}
    coco = {"images": [], "annotations": [], "categories": [{"id": i, "name": str(i)} for i in range(1, 81)]}
    for index, (name, rgb) in enumerate(photos.items(), start=1):
        file_name = f"{index:012d}.jpg"
        cv2.imwrite(str(images / file_name), np.ascontiguousarray(rgb[:, :, ::-1]))
        coco["images"].append({"id": index, "file_name": file_name, "height": rgb.shape[0], "width": rgb.shape[1]})
        for x, y, w, h, category in COCO_OBJECTS.get(name, []):
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index, "category_id": category,
                                        "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    (images / "000000000099.jpg").write_bytes(b"\xff\xd8 truncated download")
    annotations = root / "annotations" / "instances_val2017.json"
    annotations.parent.mkdir()
    annotations.write_text(json.dumps(coco))
    return images, annotations
