"""What runs on a Jetson without PyTorch: every command but export, quantize and .pth models. Each runs in a
subprocess where importing torch (and onnxsim) fails, as it would where they are not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ctrt as ctrt_package
from ctrt.demo import make_demo_video

BLOCKED = "import sys; sys.modules['torch'] = None; sys.modules['onnxsim'] = None; " \
          "sys.argv = ['ctrt'] + sys.argv[1:]; from ctrt.cli import main; main()"


def ctrt_without_torch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_run_bench_inspect_doctor_triton_and_eval_need_no_torch(demo_onnx, tmp_path):
    video = make_demo_video(tmp_path / "v.avi", frames=3, size=(320, 240), seed=5)
    commands = [
        ("run", demo_onnx, "--source", video, "--save-json", tmp_path / "t.jsonl"),
        ("bench", demo_onnx, "--source", video, "--frames", 2, "--warmup", 0, "--duration", 0.2, "--iterations", 1),
        ("inspect", demo_onnx),
        ("doctor",),
        ("triton", demo_onnx, "-o", tmp_path / "repo", "--backend", "python"),
        ("make-data", "pedestrians", tmp_path / "ped", "--count", 1, "--frames", 30),
        ("eval", "--tracker-only", "--mot", tmp_path / "ped"),
    ]
    for args in commands:
        result = ctrt_without_torch(*args)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stdout, result.stderr)
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 3
    api = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; import ctrt; "
                          f"run = ctrt.load({str(demo_onnx)!r}).track({str(video)!r}); print(len(list(run)))"],
                         capture_output=True, text=True)
    assert api.returncode == 0 and api.stdout.strip() == "3", api.stderr[-2000:]
    # The proof that torch was really out of reach: export needs it, and says so in one line.
    result = ctrt_without_torch("export", "--builtin", "demo", "-o", tmp_path / "m.onnx")
    assert result.returncode == 2 and "needs PyTorch" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_core_install_without_torch_serves_onnx_models(demo_onnx, tmp_path):
    """A fresh venv with the core and ONNX Runtime (`pip install 'ctrt[cpu]'`) and an OpenCV that comes from
    elsewhere (here a separate pip install, on a Jetson JetPack's): no torch, no video extra."""
    root = Path(ctrt_package.__file__).resolve().parents[1]
    source = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(root / "ctrt", source / "ctrt", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = subprocess.run([venv / "bin" / "pip", "install", "--disable-pip-version-check", "-q", f"{source}[cpu]",
                          "opencv-python-headless"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    installed = subprocess.run([venv / "bin" / "python", "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                               capture_output=True, text=True).stdout.strip()
    assert installed == "None"
    ctrt = venv / "bin" / "ctrt"
    video = make_demo_video(tmp_path / "v.avi", frames=3, size=(320, 240), seed=6)
    for args in (("doctor",), ("inspect", demo_onnx), ("run", demo_onnx, "--source", video, "--save-json", tmp_path / "t.jsonl"),
                 ("bench", demo_onnx, "--source", video, "--frames", 2, "--warmup", 0, "--duration", 0.2,
                  "--iterations", 1)):
        result = subprocess.run([ctrt, *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 3
    result = subprocess.run([ctrt, "export", "--builtin", "demo", "-o", tmp_path / "m.onnx"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: ctrt export needs PyTorch, which is not installed: pip install 'ctrt[export]'")


def test_the_shared_fixtures_import_no_torch():
    """Tests that need no checkpoint run where PyTorch is not installed: the shared fixtures import it lazily."""
    tests = Path(__file__).parent
    probe = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; import conftest, "
                            "test_options, test_extensions, test_layering, test_service, test_streams"],
                           capture_output=True, text=True, cwd=tests)
    assert probe.returncode == 0, probe.stderr[-2000:]
