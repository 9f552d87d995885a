"""The reliability contract, tried as a user would: the real ``ctrt`` console script in a subprocess.

Every bad input ends in exactly one ``error:`` line on stderr, exit code 2, no traceback, and no file created or
changed anywhere in the working folder. A run stopped by SIGTERM/SIGHUP/Ctrl-C or by a full disk leaves complete
outputs: a playable video whose every frame reads back, whole JSON lines.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ctrt.demo import make_demo_video

CTRT = str(Path(sys.executable).with_name("ctrt"))
FRAMES = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory, onnx_85, checkpoint_85) -> Path:
    """A working folder holding what a user has at hand: a model, a checkpoint, videos, images, and bad files."""
    root = tmp_path_factory.mktemp("world")
    for source, name in ((onnx_85, "model.onnx"), (Path(f"{onnx_85}.json"), "model.onnx.json"),
                         (checkpoint_85, "model_last.pth")):
        os.link(source, root / name)  # hard links: a write through either name would show in the snapshot
    make_demo_video(root / "in.avi", frames=FRAMES, size=(320, 240))
    writer = cv2.VideoWriter(str(root / "empty.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240))
    writer.release()
    (root / "cut.mp4").write_bytes(make_demo_video(root / "whole.mp4", frames=FRAMES).read_bytes()[:5000])
    (root / "whole.mp4").unlink()
    (root / "bad").mkdir()
    (root / "bad" / "a.jpg").write_bytes(b"\xff\xd8 truncated download")
    (root / "bad" / "b.png").write_bytes(b"not a png")
    (root / "adir").mkdir()
    (root / "corrupt.onnx").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    (root / "model.tflite").write_bytes(b"\0")
    os.link(onnx_85, root / "stale.onnx")
    stale = json.loads(Path(f"{onnx_85}.json").read_text())
    stale["input_size"] = [512, 512]  # a sidecar left over from another export
    (root / "stale.onnx.json").write_text(json.dumps(stale))

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"state_dict": Payload()}, root / "evil.pth")
    (root / "truncated.pth").write_bytes(checkpoint_85.read_bytes()[:100_000])
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, root / "resnet.pth")
    (root / "notes.pth").write_text("these are my notes, not a checkpoint\n")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file under ``root``: size, mtime and, for small files, content."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size < 1 << 20 else ""
            state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
    return state


def ctrt(*args: str, cwd: Path, timeout: float = 180, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([CTRT, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                          **kwargs)


def assert_one_error_line(result: subprocess.CompletedProcess, message: str, code: int = 2) -> None:
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, shown
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), shown
    assert message in lines[0], shown


RUN = ("run", "model.onnx", "--source", "in.avi")
EXPORT = ("export", "model_last.pth", "--input-size", "128x160")
QUANTIZE = ("quantize", "model.onnx", "--calib-images", "bad")

CASES = [
    # 1. outputs that would destroy an input or each other, or cannot be written at all
    ("video over its own source", (*RUN, "--save-video", "in.avi"), "is also an input (in.avi)"),
    ("two outputs, one file", (*RUN, "--save-mot", "o.txt", "--save-json", "o.txt"), "both name o.txt"),
    ("output over the model", (*RUN, "--save-json", "model.onnx"), "is also an input"),
    ("output over the model's sidecar", (*RUN, "--save-json", "model.onnx.json"), "is also an input"),
    ("output over a source image", ("run", "model.onnx", "--source", "bad", "--save-mot", "bad/a.jpg"),
     "is also an input"),
    ("mot into /proc", (*RUN, "--save-mot", "/proc/x.txt"), "cannot create files in /proc"),
    ("video into /proc", (*RUN, "--save-video", "/proc/x.mp4"), "cannot create files in /proc"),
    ("video with a text suffix", (*RUN, "--save-video", "o.txt"), "name it .mp4 (mp4v) or .avi (MJPG)"),
    ("output is a folder", (*RUN, "--save-json", "adir"), "adir is a folder"),
    ("output under a file", (*RUN, "--save-json", "in.avi/x.jsonl"), "is a file, not a folder"),
    ("export into /proc", (*EXPORT, "-o", "/proc/x.onnx"), "cannot create files in /proc"),
    ("export onto a folder", (*EXPORT, "-o", "adir"), "adir is a folder"),
    ("export over its checkpoint", (*EXPORT, "-o", "model_last.pth"), "is also an input"),
    ("export onto a device", ("export", "--random-init", "-o", "/dev/null"), "not a regular file"),
    ("quantize into /proc", (*QUANTIZE, "-o", "/proc/q.onnx"), "cannot create files in /proc"),
    ("quantize over its model", (*QUANTIZE, "-o", "model.onnx"), "is also an input"),
    ("bench json into /proc", ("bench", "model.onnx", "--json", "/proc/b.json"), "cannot create files in /proc"),
    ("bench plot onto a folder", ("bench", "model.onnx", "--plot", "adir"), "adir is a folder"),
    ("engine into /proc", ("build", "model.onnx", "-o", "/proc/x.engine"), "cannot create files in /proc"),
    ("demo into /proc", ("demo", "--output-dir", "/proc/demo"), "cannot create files in /proc"),
    # 5. sources that give nothing
    ("0-frame video", ("run", "model.onnx", "--source", "empty.avi", "--save-json", "o.jsonl"), "gave no frame"),
    ("only unreadable images", ("run", "model.onnx", "--source", "bad", "--save-json", "o.jsonl"),
     "none of the 2 images of 'bad' could be read"),
    ("missing source", ("run", "model.onnx", "--source", "missing.mp4"), "source not found: missing.mp4"),
    ("empty glob", ("run", "model.onnx", "--source", "nothing/*.png"), "no images match"),
    ("unreachable stream", ("run", "model.onnx", "--source", "rtsp://127.0.0.1:9/cam", "--reconnects", "0"),
     "cannot open stream source"),
    ("mp4 cut short", ("run", "model.onnx", "--source", "cut.mp4"), "cannot open video source"),
    # models and checkpoints
    ("missing model", ("run", "missing.onnx", "--source", "in.avi"), "model not found"),
    ("unknown model type", ("run", "model.tflite", "--source", "in.avi"), "unsupported model type .tflite"),
    ("corrupt ONNX", ("run", "corrupt.onnx", "--source", "in.avi"), "not a readable ONNX file"),
    ("sidecar of another export", ("run", "stale.onnx", "--source", "in.avi"),
     "does not describe it (input size 512x512, the graph takes 128x160)"),
    ("checkpoint carrying code", ("export", "evil.pth"), "holds Python objects beyond tensors (posix.system)"),
    ("truncated checkpoint", ("export", "truncated.pth"), "not a readable PyTorch checkpoint"),
    ("checkpoint of another network", ("export", "resnet.pth"), "is not a HarDNet-68/85 CenterTrack"),
    ("text named .pth", ("export", "notes.pth"), "not a readable PyTorch checkpoint"),
    ("inspect a corrupt ONNX", ("inspect", "corrupt.onnx"), "not a readable ONNX file"),
    ("cuda without a GPU", (*RUN, "--device", "cuda"), "CUDAExecutionProvider is not usable here"),
    ("build without TensorRT", ("build", "model.onnx"), "TensorRT is not installed here"),
    ("quantize with an unknown method", (*QUANTIZE, "--method", "bogus"), "--method 'bogus'"),
    # 7. values out of range, refused before any work
    ("threshold above 1", (*RUN, "--track-thresh", "5"), "Invalid value for '--track-thresh'"),
    ("threshold below 0", (*RUN, "--track-thresh", "-1"), "Invalid value for '--track-thresh'"),
    ("pre_hm threshold above 1", (*RUN, "--pre-thresh", "2"), "--pre-thresh 2 is not a score in [0, 1]"),
    ("negative threads", (*RUN, "--threads", "-3"), "Invalid value for '--threads'"),
    ("max age below -1", (*RUN, "--max-age", "-5"), "Invalid value for '--max-age'"),
    ("top-K of 0", (*RUN, "--topk", "0"), "'--topk': Input should be greater than or equal to 1"),
    ("negative duration", ("bench", "model.onnx", "--duration", "-1"), "--duration': -1 is not > 0"),
    ("negative warm-up", ("bench", "model.onnx", "--warmup", "-5"), "Invalid value for '--warmup'"),
    ("negative tolerance", (*EXPORT, "--atol", "-1"), "--atol': -1 is not > 0"),
    ("zero workspace", ("build", "model.onnx", "--workspace", "0"), "--workspace': 0 is not > 0"),
    ("size beyond memory", ("export", "--random-init", "--input-size", "100000x100000"), "needs about"),
    ("size off the 32 grid", (*EXPORT, "--input-size", "500x500"), "nearest valid: 480x480"),
    ("unknown option", (*RUN, "--frobnicate"), "No such option: --frobnicate"),
]


@pytest.mark.parametrize("args, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_touches_nothing(world, args, message):
    before = snapshot(world)
    result = ctrt(*args, cwd=world)
    assert_one_error_line(result, message)
    assert snapshot(world) == before


def test_checks_come_before_the_work(world):
    """An unwritable --json is refused at once, not after the benchmark has run for its duration."""
    start = time.monotonic()
    result = ctrt("bench", "model.onnx", "--duration", "30", "--json", "/proc/b.json", cwd=world)
    assert_one_error_line(result, "cannot create files in /proc")
    assert time.monotonic() - start < 20


def read_back(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (240, 320, 3)
        frames += 1
    return frames


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_run_leaves_playable_video_and_whole_lines(world, tmp_path, signum):
    video = make_demo_video(tmp_path / "long.mp4", frames=2000, size=(320, 240))
    out = tmp_path / "out"
    process = subprocess.Popen([CTRT, "run", world / "model.onnx", "--source", video, "--save-video", out / "t.mp4",
                                "--save-json", out / "t.jsonl", "--save-mot", out / "t.txt"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "t.jsonl").exists() or (out / "t.jsonl").stat().st_size == 0:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stdout + stderr
    frames = [json.loads(line) for line in (out / "t.jsonl").read_text().splitlines()]
    assert 0 < len(frames) < 2000
    assert f"interrupted ({signal.Signals(signum).name}): {len(frames)} frames written" in stderr
    assert read_back(out / "t.mp4") == len(frames)
    assert (out / "t.txt").read_text().endswith("\n")


@contextlib.contextmanager
def small_filesystem(path: Path, size: str):
    """A tmpfs of ``size``: a disk that really fills up (needs root and mount rights)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers the same path")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_full_disk_during_export_and_run(world, tmp_path):
    with small_filesystem(tmp_path / "disk", "64k") as disk:
        result = ctrt(*EXPORT, "--no-check", "-o", disk / "m.onnx", cwd=world)
        assert_one_error_line(result, f"cannot write {disk / 'm.onnx'}: no space left on device")
        assert list(disk.iterdir()) == []  # neither the model, its sidecar nor a temporary file

        long_video = make_demo_video(tmp_path / "long.avi", frames=200, size=(320, 240))
        result = ctrt("run", world / "model.onnx", "--source", long_video, "--save-json", disk / "t.jsonl",
                      "--save-mot", disk / "t.txt", cwd=world)
        assert_one_error_line(result, "no space left on device; it keeps the")
        text = (disk / "t.jsonl").read_text()
        assert text.endswith("\n") and [json.loads(line)["frame"] for line in text.splitlines()] == \
            list(range(1, text.count("\n") + 1))


def test_file_size_limit_during_export_is_one_line_and_leaves_nothing(world, tmp_path):
    """The same path without root: RLIMIT_FSIZE makes writes past 1 MB fail with EFBIG (Python ignores SIGXFSZ)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out = tmp_path / "limited"
    result = ctrt(*EXPORT, "--no-check", "-o", out / "m.onnx", cwd=world, preexec_fn=limit)
    assert_one_error_line(result, f"cannot write {out / 'm.onnx'}: File too large")
    assert not out.exists()  # the folder the export created for its output is gone again


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server(world):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(world))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_video_file_over_http_ends_at_its_end(world, tmp_path, http_server):
    result = ctrt("run", "model.onnx", "--source", f"{http_server}/in.avi", "--save-json", tmp_path / "h.jsonl",
                  cwd=world, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{FRAMES} frames" in result.stdout
    assert len((tmp_path / "h.jsonl").read_text().splitlines()) == FRAMES


def test_cli_conventions_version_and_flag_names(world):
    for flag in ("--version", "-V"):
        result = ctrt(flag, cwd=world)
        assert result.returncode == 0 and result.stdout.startswith("ctrt ")
    for command in ("export", "run", "demo", "build", "quantize", "bench", "inspect", "doctor", "selftest"):
        result = ctrt(command, "--help", cwd=world)
        assert result.returncode == 0 and "--no-no-" not in result.stdout, command
