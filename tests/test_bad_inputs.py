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
import pickle
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from ctrt.demo import make_demo_video
from ctrt.eval.datasets import make_dataset

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
    (root / "raw-evil.pth").write_bytes(pickle.dumps({"state_dict": Payload()}))  # a plain pickle, not a torch zip
    (root / "tiny").mkdir()
    for i in range(3):
        cv2.imwrite(str(root / "tiny" / f"{i}.png"), np.zeros((1, 1, 3), np.uint8))
    (root / "truncated.pth").write_bytes(checkpoint_85.read_bytes()[:100_000])
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, root / "resnet.pth")
    (root / "notes.pth").write_text("these are my notes, not a checkpoint\n")
    # datasets: MOT ground truth, a COCO set (its images double as calibration images), and broken copies
    make_dataset("pedestrians", root / "mot", 1, 20, (320, 240), 0)
    make_dataset("demo-coco", root / "coco", 3, 2, (320, 240), 0)
    shutil.copytree(root / "coco" / "images", root / "calib")
    gt = (root / "mot" / "PED-01" / "gt" / "gt.txt").read_text()
    info = (root / "mot" / "PED-01" / "seqinfo.ini").read_text()
    for name, gt_text, info_text in (
            ("mot-long", gt, info.replace("seqLength=20", "seqLength=2000000000")),
            ("mot-negative-id", "1,-1," + gt.split(",", 2)[2], info),
            ("mot-latin1", gt + "1,1,0,0,10,10,1,1,1 # caf\xe9\n", info)):
        (root / name / "PED-01" / "gt").mkdir(parents=True)
        (root / name / "PED-01" / "gt" / "gt.txt").write_bytes(gt_text.encode("latin-1"))
        (root / name / "PED-01" / "seqinfo.ini").write_text(info_text)
    coco = json.loads((root / "coco" / "annotations.json").read_text())
    for name, section, field, value in (("coco-bbox-text.json", "annotations", "bbox", "10,10,20,20"),
                                         ("coco-category-text.json", "annotations", "category_id", "1"),
                                         ("coco-width-text.json", "images", "width", "320")):
        broken = json.loads(json.dumps(coco))
        broken[section][0][field] = value
        (root / name).write_text(json.dumps(broken))
    (root / "sources-latin1.txt").write_bytes("in.avi\ncam\xe9ra.mp4\n".encode("latin-1"))
    sidecar = json.loads(Path(f"{onnx_85}.json").read_text())
    for name, change in (("size-text", {"input_size": "128x160"}), ("size-one", {"input_size": [128]}),
                         ("model-null", {"model": None}), ("heads-list", {"model": {**sidecar["model"], "heads": [80]}}),
                         ("arch-word", {"model": {**sidecar["model"], "arch": "big"}}), ("mean-text", {"mean": "abc"}),
                         ("mean-one", {"mean": [0.4]}), ("std-zero", {"std": [0.0, 0.27, 0.28]}),
                         ("batch-word", {"batch": "one"}), ("batch-negative", {"batch": -3}), ("inputs-5", {"inputs": 5}),
                         ("topk-word", {"graph": {**sidecar["graph"], "topk": "many"}})):
        os.link(onnx_85, root / f"{name}.onnx")
        (root / f"{name}.onnx.json").write_text(json.dumps({**sidecar, **change}))
    (root / "ext").mkdir()  # weights kept beside the graph, and graphs pointing elsewhere for theirs
    onnx.save_model(onnx.load(str(onnx_85)), root / "ext" / "ok.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ok.data", size_threshold=0)
    for name, location in (("ext-escape", "../../secret/w.data"), ("ext-absolute", "/etc/passwd")):
        graph = onnx.load(str(root / "ext" / "ok.onnx"), load_external_data=False)
        entry = next(e for e in graph.graph.initializer[0].external_data if e.key == "location")
        entry.value = location
        onnx.save_model(graph, root / "ext" / f"{name}.onnx")
    os.link(onnx_85, root / "deep.onnx")
    (root / "deep.onnx.json").write_text("[" * 200_000 + "]" * 200_000)
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
     "is inside the input folder bad"),
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
    ("threshold above 1", (*RUN, "--track-thresh", "5"), "--track-thresh 5: give 0 to 1 (a score)"),
    ("threshold below 0", (*RUN, "--track-thresh", "-1"), "--track-thresh -1: give 0 to 1 (a score)"),
    ("pre_hm threshold above 1", (*RUN, "--pre-thresh", "2"), "--pre-thresh 2: give 0 to 1 (a score)"),
    ("negative threads", (*RUN, "--threads", "-3"), "--threads -3: give 0 to"),
    ("max age below -1", (*RUN, "--max-age", "-5"), "--max-age -5: give -1 to 2592000 frames"),
    ("min hits above 100", (*RUN, "--min-hits", "1000"), "--min-hits 1000: give 1 to 100"),
    ("eval tracker min_hits 0", ("eval", "--tracker-only", "--mot", "mot", "--tracker", "min_hits=0"),
     "min_hits 0: give 1 to 100"),
    ("top-K of 0", (*RUN, "--topk", "0"), "--topk 0: give 1 to 3840"),
    ("negative duration", ("bench", "model.onnx", "--duration", "-1"), "--duration': -1 is not > 0"),
    ("negative warm-up", ("bench", "model.onnx", "--warmup", "-5"), "Invalid value for '--warmup'"),
    ("negative tolerance", (*EXPORT, "--atol", "-1"), "--atol': -1 is not > 0"),
    ("zero workspace", ("build", "model.onnx", "--workspace", "0"), "--workspace': 0 is not > 0"),
    ("size beyond memory", ("export", "--random-init", "--input-size", "100000x100000"), "needs about"),
    ("size off the 32 grid", (*EXPORT, "--input-size", "500x500"), "nearest valid: 480x480"),
    ("unknown option", (*RUN, "--frobnicate"), "No such option: --frobnicate"),
    # a dataset, an image or calibration folder is an input as a whole
    ("eval json over the ground truth", ("eval", "--tracker-only", "--mot", "mot", "--json", "mot/PED-01/gt/gt.txt"),
     "is inside the input folder mot"),
    ("eval plot over seqinfo.ini", ("eval", "--tracker-only", "--mot", "mot", "--plot", "mot/PED-01/seqinfo.ini"),
     "is inside the input folder mot"),
    ("eval json into the dataset", ("eval", "--tracker-only", "--mot", "mot", "--json", "mot/scores.json"),
     "is inside the input folder mot"),
    ("eval save-dir into the dataset", ("eval", "--tracker-only", "--mot", "mot", "--save-dir", "mot/trackers"),
     "is inside the input folder mot"),
    ("eval json over a COCO image", ("eval", "model.onnx", "--coco", "coco/annotations.json", "--images", "coco/images",
                                     "--json", "coco/images/000001.jpg"), "is inside the input folder coco/images"),
    ("quantize into its calibration images", (*QUANTIZE[:2], "--calib-images", "calib", "-o", "calib/000001.jpg"),
     "is inside the input folder calib"),
    ("build into its calibration images", ("build", "model.onnx", "--int8", "--calib-images", "calib",
                                           "-o", "calib/m.engine"), "is inside the input folder calib"),
    ("run json into its image folder", ("run", "model.onnx", "--source", "bad", "--save-json", "bad/t.jsonl"),
     "is inside the input folder bad"),
    ("triton data outside the model's folder", ("triton", "ext/ext-escape.onnx", "-o", "repo"),
     "keeps its data at '../../secret/w.data', outside the model's folder"),
    ("triton data at an absolute path", ("triton", "ext/ext-absolute.onnx", "-o", "repo"),
     "keeps its data at '/etc/passwd', outside the model's folder"),
    ("frames too small to encode", ("run", "model.onnx", "--source", "tiny", "--save-video", "t.mp4", "--save-json",
                                    "t.jsonl"), "could not start its mp4v encoder for 1x1 frames"),
    ("raw pickle carrying code", ("export", "raw-evil.pth"), "holds Python objects beyond tensors (posix.system)"),
    ("opset too old", (*EXPORT, "--opset", "7"), "--opset 7: ctrt exports opsets 11 to 20"),
    # numbers: finite and bounded
    ("infinite bench duration", ("bench", "model.onnx", "--duration", "inf"), "Invalid value for '--duration'"),
    ("nan bench duration", ("bench", "model.onnx", "--duration", "nan"), "Invalid value for '--duration'"),
    ("infinite warm-up", ("bench", "model.onnx", "--warmup", "inf"), "Invalid value for '--warmup'"),
    ("nan warm-up", ("bench", "model.onnx", "--warmup", "nan"), "Invalid value for '--warmup'"),
    ("nan threshold", (*RUN, "--low-thresh", "nan"), "--low-thresh nan: give a finite number"),
    ("nan tolerance", (*EXPORT, "--atol", "nan"), "--atol nan: give a finite number"),
    ("100000 threads", (*RUN, "--threads", "100000"), "--threads 100000: give 0 to"),
    ("negative seed", (*QUANTIZE, "--seed", "-1"), "Invalid value for '--seed'"),
    ("source size beyond memory", ("export", "--random-init", "--input-size", "128x160", "--preprocess-in-graph",
                                   "--source-size", "100000x100000"), "--source-size 100000x100000: at most 16384"),
    ("make-data size beyond memory", ("make-data", "demo-mot", "new", "--size", "100000x100000"),
     "--size 100000x100000: at most 16384"),
    ("make-data size 0x0", ("make-data", "demo-mot", "new", "--size", "0x0"), "--size '0x0': expected WxH"),
    # every file we read is validated where it is parsed
    ("seqLength of 2 billion", ("eval", "--tracker-only", "--mot", "mot-long"), "seqLength 2000000000 is not a frame count"),
    ("negative track id", ("eval", "--tracker-only", "--mot", "mot-negative-id"), "id -1 is not an integer from 1"),
    ("ground truth not UTF-8", ("eval", "--tracker-only", "--mot", "mot-latin1"), "not UTF-8 text"),
    ("COCO bbox as text", ("eval", "model.onnx", "--coco", "coco-bbox-text.json", "--images", "coco/images"),
     "annotations[0].bbox is '10,10,20,20', not [x, y, w, h]"),
    ("COCO category as text", ("eval", "model.onnx", "--coco", "coco-category-text.json", "--images", "coco/images"),
     "annotations[0].category_id is '1', not an integer"),
    ("COCO width as text", ("eval", "model.onnx", "--coco", "coco-width-text.json", "--images", "coco/images"),
     "images[0].width is '320', not a positive integer"),
    ("calibration COCO bbox as text", (*QUANTIZE[:2], "--calib-images", "calib", "--calib-count", "2", "--held-out",
                                       "1", "--calib-annotations", "coco-bbox-text.json"),
     "annotations[0].bbox is '10,10,20,20'"),
    ("sources file not UTF-8", ("run", "model.onnx", "--sources", "sources-latin1.txt"),
     "--sources sources-latin1.txt: not UTF-8 text"),
    *[(f"sidecar {name} under {command}", (command, f"{name}.onnx", *rest), message)
      for name, message in (("size-text", 'input_size is "128x160", not [H, W]'), ("size-one", "input_size is [128]"),
                            ("model-null", "model is null, not an object"), ("heads-list", "model.heads is [80]"),
                            ("arch-word", 'model.arch is "big", not 68 or 85'), ("mean-text", 'mean is "abc"'),
                            ("mean-one", "mean is [0.4], not three numbers"), ("std-zero", "not three numbers > 0"),
                            ("batch-word", 'batch is "one", not a batch size'), ("batch-negative", "batch is -3"),
                            ("inputs-5", "inputs is 5"), ("topk-word", 'graph.topk is "many"'),
                            ("deep", "JSON nested too deep"))
      for command, rest in (("run", ("--source", "in.avi")), ("inspect", ()), ("bench", ("--duration", "0.1")),
                            ("triton", ("-o", "repo")))],
]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_touches_nothing(world, args, message):
    before = snapshot(world)
    result = ctrt(*args, cwd=world)
    assert_one_error_line(result, message)
    assert snapshot(world) == before


@pytest.mark.slow
def test_every_file_read_is_a_regular_file_of_bounded_size(world, tmp_path):
    """A FIFO, a device, a nesting bomb or a symlink loop where ctrt reads or writes a file: one error line, or an
    image skipped and counted, never a hang, a MemoryError or a traceback."""
    fifo = tmp_path / "site.toml"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    for config, message in ((fifo, "site.toml: a FIFO, not a file"), ("/dev/zero", "/dev/zero: a character device"),
                            (deep, "deep.toml: not a site file: arrays or tables nested too deep")):
        assert_one_error_line(ctrt("run", "--config", config, "--check", cwd=world, timeout=30), message)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for args in (("run", "model.onnx", "--source", "calib", "--save-mot", tmp_path / "loop" / "t.txt"),
                 ("export", "--random-init", "--input-size", "128x160", "-o", tmp_path / "loop" / "m.onnx")):
        assert_one_error_line(ctrt(*args, cwd=world, timeout=60), "its path runs into a symbolic link loop")
    images = tmp_path / "images"  # the three calibration images and a FIFO named like one
    shutil.copytree(world / "calib", images)
    os.mkfifo(images / "zz.jpg")
    result = ctrt("run", "model.onnx", "--source", images, cwd=world, timeout=120)
    assert result.returncode == 0 and "1 unreadable frames skipped" in result.stdout, result.stdout + result.stderr
    # Calibration on every usable image: done, the accuracy report skipped with one warning line.
    out = tmp_path / "q.onnx"
    result = ctrt("quantize", "model.onnx", "--calib-images", images, "--calib-count", 3, "--held-out", 1, "-o", out,
                  cwd=world, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 3 usable images went to calibration, none is left for the accuracy report" in result.stdout
    assert out.is_file() and not (tmp_path / "q.onnx.accuracy.json").exists() and "1 unreadable skipped" in result.stdout


@pytest.mark.slow
def test_triton_copies_external_data_beside_the_model(world, tmp_path):
    result = ctrt("triton", world / "ext" / "ok.onnx", "-o", tmp_path / "repo", "--backend", "python", cwd=world)
    assert result.returncode == 0, result.stderr
    version = tmp_path / "repo" / "ctrt" / "1"
    assert (version / "ok.data").read_bytes() == (world / "ext" / "ok.data").read_bytes()
    served = onnx.load(str(version / "model.onnx"))  # loads its data from beside itself
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in served.graph.initializer)


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


@pytest.mark.slow
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


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_sigkill_of_a_segmented_run_loses_one_segment_and_its_partial_is_removed(world, tmp_path):
    video = make_demo_video(tmp_path / "long.mp4", frames=2000, size=(320, 240))
    per_segment = round(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS))  # one second of it
    out = tmp_path / "out"
    process = subprocess.Popen([CTRT, "run", world / "model.onnx", "--source", video, "--save-video", out / "v.mp4",
                                "--save-json", out / "t.jsonl", "--segment", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (out / "v-00002.mp4").exists():  # three segments closed (a segment takes its name when closed)
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.kill()
    process.wait(30)
    closed = sorted(out.glob("v-*.mp4"))
    assert len(closed) >= 3
    for segment in closed:
        assert read_back(segment) == per_segment  # every closed segment plays, whole
    partials = list(out.glob(".*.partial.mp4"))  # the segment being written when killed (none between two)
    assert len(partials) <= 1
    assert all(p.name.startswith(f".v-{len(closed):05d}.mp4.{process.pid}.") for p in partials)
    lines = (out / "t.jsonl").read_text().splitlines()
    assert len(lines) >= 3 * per_segment and all(json.loads(line) for line in lines)  # whole lines to the last one
    # a later run writing there removes what the killed one left half-written, and nothing else
    stale = out / f".m.onnx.{dead_pid()}.abc123.partial"
    stale.write_bytes(b"half an export")
    live = out / f".m.onnx.{os.getpid()}.abc123.partial"
    live.write_bytes(b"being written by a running process")
    result = ctrt("run", world / "model.onnx", "--source", "in.avi", "--save-video", out / "again.mp4", cwd=world)
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and not list(out.glob(".v-*.partial.mp4")) and live.exists()
    assert sorted(out.glob("v-*.mp4")) == closed and read_back(out / "again.mp4") == FRAMES


@pytest.mark.slow
def test_export_removes_partials_its_killed_predecessor_left(world, tmp_path):
    stale_file = tmp_path / f".m.onnx.{dead_pid()}.k2j3h4.partial"
    stale_file.write_bytes(b"\0" * 1000)
    stale_folder = tmp_path / f".repo.{dead_pid()}.x9y8z7.partial"
    stale_folder.mkdir()
    (stale_folder / "config.pbtxt").write_text("half")
    result = ctrt(*EXPORT, "--no-check", "-o", tmp_path / "m.onnx", cwd=world)
    assert result.returncode == 0, result.stderr
    assert not stale_file.exists() and not stale_folder.exists() and (tmp_path / "m.onnx").is_file()


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


@pytest.mark.slow
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
        mot_frames = {int(row.split(",")[0]) for row in (disk / "t.txt").read_text().splitlines()}
        assert max(mot_frames) <= text.count("\n")  # both end on the same frame: none has a frame the other lacks

        # A disk full before the start: one line, and no lock file left behind.
        for path in disk.iterdir():
            path.unlink()
        with (disk / "filler").open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:
                fh.write(b"x" * 4096)
        result = ctrt("run", world / "model.onnx", "--source", long_video, "--save-json", disk / "t.jsonl", cwd=world)
        assert_one_error_line(result, "no space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]

    # A disk that fills while video segments are written (OpenCV's writer loses frames silently): the video is
    # closed readable, and the JSON lines and the segments end on the same frame.
    with small_filesystem(tmp_path / "disk2", "2m") as disk:
        result = ctrt("run", world / "model.onnx", "--source", long_video, "--save-json", disk / "t.jsonl",
                      "--save-video", disk / "v.avi", "--segment", "1", cwd=world)
        assert_one_error_line(result, "no space left on device; the video keeps the")
        lines = (disk / "t.jsonl").read_text().splitlines()
        segments = sorted(disk.glob("v-*.avi"))
        assert len(segments) >= 2 and len(lines) < 200 and sum(read_back(s) for s in segments) == len(lines)
        assert all(read_back(s) for s in segments) and sorted(p.name for p in disk.iterdir()) == \
            sorted(["t.jsonl", *(s.name for s in segments)])  # no empty segment, no partial file


@pytest.mark.slow
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
