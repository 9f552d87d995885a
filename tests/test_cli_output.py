"""Output for logs: with stdout a pipe (systemd, docker), long commands print one plain line per phase with the
elapsed time, and no sentence or table title is broken across lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ctrt.demo import make_demo_video

CTRT = str(Path(sys.executable).with_name("ctrt"))


def piped(*args) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as a service manager starts it
    result = subprocess.run([CTRT, *map(str, args)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return (result.stdout + result.stderr).splitlines()


@pytest.mark.slow
def test_piped_output_is_one_line_per_phase_and_never_wraps_mid_sentence(tmp_path):
    model = tmp_path / "demo.onnx"
    lines = piped("export", "--builtin", "demo", "--input-size", "128x160", "-o", model)
    phases = [line for line in lines if line.startswith("export: ")]
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in phases] == [
        "export: loading the model", "export: tracing to ONNX (opset 17), simplifying",
        "export: checking ONNX Runtime against PyTorch"]
    assert "ONNX Runtime (CPU) vs PyTorch, tolerance 0.0001 x max(1, max |ref|)" in [line.strip() for line in lines]
    assert any(line.startswith(f"wrote {model} (") and line.rstrip().endswith("Slice") for line in lines)
    video = make_demo_video(tmp_path / "v.avi", frames=3, size=(320, 240), seed=7)
    lines = piped("run", model, "--source", video)
    note = ("note: the built-in demo model (seeded HarDNet-85, heads fitted to ctrt's generated demo scenes; blind to "
            "the real world)")
    assert note in lines and any(re.fullmatch(r"3 frames, \d+ track ids, [\d.]+ FPS on onnxruntime \(CPU\)", line)
                                 for line in lines)
    assert any(line.startswith("mean ms per frame: preprocess ") and line.rstrip().endswith(tuple("0123456789"))
               for line in lines)
