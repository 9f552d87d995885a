"""`ctrt run` end to end on real files, and every way a source can fail."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ctrt.demo import make_demo_video
import ctrt
from ctrt.runtime.pipeline import Session
from ctrt.runtime.sources import FrameSource
from conftest import invoke

FRAMES = 8


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_demo_video(tmp_path_factory.mktemp("video") / "walk.mp4", frames=FRAMES, size=(320, 240))


def read_video_frames(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    return count


def read_json_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_video_writes_all_three_outputs_consistently(onnx_85, video, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", onnx_85, "--source", video, "--save-video", out / "t.mp4", "--save-mot", out / "t.txt",
                    "--save-json", out / "t.jsonl")
    assert result.exit_code == 0, result.output
    assert f"{FRAMES} frames" in result.output and "FPS on onnxruntime (CPU)" in result.output
    frames = read_json_lines(out / "t.jsonl")
    assert [f["frame"] for f in frames] == list(range(1, FRAMES + 1))
    assert read_video_frames(out / "t.mp4") == FRAMES
    mot = np.loadtxt(out / "t.txt", delimiter=",", ndmin=2)
    shown = [(f["frame"], r["tracking_id"]) for f in frames for r in f["results"] if r["shown"]]
    assert shown == [(f["frame"], r["tracking_id"]) for f in frames for r in f["results"] if r["active"] > 0]
    assert sorted(map(tuple, mot[:, :2].astype(int).tolist())) == sorted(shown)
    for f in frames:
        for r in f["results"]:
            assert set(r) == {"score", "class", "ct", "tracking", "bbox", "tracking_id", "age", "active", "shown"}
            x1, y1, x2, y2 = r["bbox"]
            assert x2 >= x1 and y2 >= y1 and r["score"] > 0.3


@pytest.mark.slow
def test_checkpoint_and_onnx_give_the_same_tracks(onnx_85, checkpoint_85, video, tmp_path):
    for name, model in (("onnx", onnx_85), ("torch", checkpoint_85)):
        result = invoke("run", model, "--input-size", "128x160", "--source", video, "--max-frames", 4,
                        "--save-json", tmp_path / f"{name}.jsonl")
        assert result.exit_code == 0, result.output
    onnx_frames, torch_frames = (read_json_lines(tmp_path / f"{n}.jsonl") for n in ("onnx", "torch"))
    assert len(onnx_frames) == len(torch_frames) == 4
    for a, b in zip(onnx_frames, torch_frames):
        assert [r["tracking_id"] for r in a["results"]] == [r["tracking_id"] for r in b["results"]]
        if a["results"]:
            assert np.abs(np.array([r["bbox"] for r in a["results"]]) - [r["bbox"] for r in b["results"]]).max() < 1e-2


def test_image_folder_skips_unreadable_images(onnx_85, video, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    capture = cv2.VideoCapture(str(video))
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), capture.read()[1])
    (folder / "001b.jpg").write_bytes(b"not really a jpeg")
    result = invoke("run", onnx_85, "--source", folder, "--save-json", tmp_path / "f.jsonl")
    assert result.exit_code == 0, result.output
    assert "3 frames" in result.output and "1 unreadable frames skipped" in result.output
    assert len(read_json_lines(tmp_path / "f.jsonl")) == 3


@pytest.mark.parametrize("source, message", [
    ("missing.mp4", "source not found: missing.mp4"),
    ("rtsp://127.0.0.1:9/cam", "cannot open stream source 'rtsp://127.0.0.1:9/cam'"),
    ("v4l2src ! videoconvert ! appsink", "no GStreamer support"),
    ("nothing/*.png", "no images match"),
    ("CUT_MP4", "cannot open video source"),  # an mp4 cut short loses its index: it cannot be opened at all
])
def test_bad_sources_fail_with_one_line(onnx_85, video, tmp_path, source, message):
    if source == "CUT_MP4":
        source = tmp_path / "cut.mp4"
        source.write_bytes(video.read_bytes()[:5000])
    # A live stream down at the start waits for its camera unless told not to (reconnects 0).
    result = invoke("run", onnx_85, "--source", source, "--save-json", tmp_path / "x.jsonl", "--reconnects", 0)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "x.jsonl").exists()


def test_bad_models_fail_with_one_line(tmp_path, video):
    (tmp_path / "model.tflite").write_bytes(b"\0")
    for model, message in ((tmp_path / "none.onnx", "model not found"), (tmp_path / "model.tflite", "unsupported")):
        result = invoke("run", model, "--source", video)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_video_cut_mid_stream_still_leaves_complete_outputs(onnx_85, tmp_path):
    video = make_demo_video(tmp_path / "long.avi", frames=FRAMES, size=(320, 240))
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = invoke("run", onnx_85, "--source", cut, "--save-video", tmp_path / "o.mp4", "--save-json", tmp_path / "o.jsonl")
    assert result.exit_code == 0, result.output
    frames = read_json_lines(tmp_path / "o.jsonl")
    assert 0 < len(frames) == read_video_frames(tmp_path / "o.mp4") < FRAMES


class FlakyCamera:
    """A camera that delivers ``frames`` frames per connection, then drops; ``connections`` opens succeed."""

    def __init__(self, state, frame):
        self.state, self.frame, self.left = state, frame, 0
        state["opens"] += 1
        self.opened = state["opens"] <= state["connections"]
        self.left = state["frames"] if self.opened else 0

    def isOpened(self):
        return self.opened

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, self.frame.copy()

    def get(self, prop):
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.opened = False


def run_camera(onnx_path, tmp_path, connections, interrupt_at=None):
    state = {"opens": 0, "connections": connections, "frames": 3}
    frame = cv2.imread(str(tmp_path / "frame.png")) if (tmp_path / "frame.png").exists() else None
    if frame is None:
        frame = np.full((240, 320, 3), 90, np.uint8)
    source = FrameSource("0", reconnects=2, backoff_s=0, capture_factory=lambda *a: FlakyCamera(state, frame))
    # Every frame: the camera's frames come faster than the model takes them, and none may be dropped here.
    run = ctrt.load(onnx_path, device="cpu").track({"cam": source}, drop="none", save_json=tmp_path / "cam.jsonl",
                                                   save_video=tmp_path / "cam.mp4", save_mot=tmp_path / "cam.txt")
    try:
        with run:
            for r in run:
                if r.index + 1 == interrupt_at:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    return run.report.streams[0], run.report, state


@pytest.mark.slow
def test_live_source_reconnects_after_a_drop(onnx_85, tmp_path):
    stream, report, state = run_camera(onnx_85, tmp_path, connections=2)
    # 3 frames, drop, reopen (2nd connection), 3 frames, drop, two failed reopens -> lost.
    assert state["opens"] == 4 and stream.frames == 6 and stream.lost and not report.interrupted
    assert report.exit_status == 1
    # A live camera's video plays in real time: each tracked frame is held for the camera's frame times it spans.
    assert len(read_json_lines(tmp_path / "cam.jsonl")) == 6 <= read_video_frames(tmp_path / "cam.mp4")


def test_interrupt_flushes_and_closes_outputs(onnx_85, tmp_path):
    stream, report, _ = run_camera(onnx_85, tmp_path, connections=5, interrupt_at=4)
    assert report.interrupted and stream.frames == 4 and report.exit_status == 130
    assert len(read_json_lines(tmp_path / "cam.jsonl")) == 4 <= read_video_frames(tmp_path / "cam.mp4")


class FakeCapture:
    """A capture that opens and reports ``count`` frames (0: unknown, as a camera's MJPEG stream reports)."""

    def __init__(self, count):
        self.count = count

    def isOpened(self):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.count, cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

    def release(self):
        pass


@pytest.mark.parametrize("spec, count, live", [
    ("http://127.0.0.1/clip.avi", 120, False),  # a file served over HTTP ends at its end
    ("http://127.0.0.1/video.mjpg", 0, True),  # a camera's HTTP stream has no length
    ("rtsp://127.0.0.1/cam", 120, True),  # a streaming protocol is live whatever it reports
    ("udp://127.0.0.1:5000", 0, True),
])
def test_urls_are_live_only_when_streamed(spec, count, live):
    source = FrameSource(spec, capture_factory=lambda *a: FakeCapture(count))
    assert source.live is live and source.total == (None if live else count)


def test_reconnects_are_announced_one_line_each(onnx_85, tmp_path):
    state = {"opens": 0, "connections": 2, "frames": 3}
    messages = []
    source = FrameSource("0", reconnects=2, backoff_s=0, notify=messages.append,
                         capture_factory=lambda *a: FlakyCamera(state, np.full((240, 320, 3), 90, np.uint8)))
    assert sum(1 for _ in source) == 6 and source.lost and source.reconnected == 1
    assert messages == ["0: stream lost, reconnecting (1/2) in 0.0 s", "0: back after 0 s",  # the second connection
                        "0: stream lost, reconnecting (1/2) in 0.0 s", "0: stream lost, reconnecting (2/2) in 0.0 s",
                        "0: gave up after 2 reconnect attempts"]
    assert source.state == "failed"


def test_stage_times_of_a_long_run_take_constant_memory():
    from ctrt.runtime.timing import StageTimes

    times = StageTimes(("a", "b"), keep=64)
    for i in range(100_000):
        times.add(np.array([i % 7, 1.0]))
    assert times.samples.shape == (64, 2) and times._data.nbytes == 64 * 2 * 8
    assert times.samples[-1, 0] == (100_000 - 1) % 7  # the newest frame last
    assert abs(times.mean()["a"] - np.mean(np.arange(100_000) % 7)) < 1e-9 and times.mean()["b"] == 1.0


class ConstantBackend:
    """A model that finds one object at the same place in every frame."""

    def __init__(self, meta):
        self.meta, self.name = meta, "constant"
        h, w = meta.input_size
        self.outputs = {head: np.zeros((1, channels, h // 4, w // 4), np.float32)
                        for head, channels in meta.config.heads.items()}
        self.outputs["hm"][:] = -10.0
        self.outputs["hm"][0, 0, 4, 4] = 5.0
        self.outputs["wh"][0, :, 4, 4] = 8.0

    def __call__(self, feed):
        return self.outputs


LONG_RUN = """
import os, sys
import numpy as np
from ctrt import Session
from ctrt.artifacts import ArtifactMeta
from ctrt.model.config import ModelConfig
from test_run import ConstantBackend

def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

config = ModelConfig()
meta = ArtifactMeta("onnx", config.to_dict(), (32, 32), 1, "fp32", "stub", "", config.inputs, list(config.heads))
session = Session(ConstantBackend(meta))
frame = np.zeros((32, 32, 3), np.uint8)
for _ in range(2_000):  # past the stage-time ring's size
    tracks = session.update(frame)
before = resident_bytes()
for _ in range(30_000):
    tracks = session.update(frame)
assert len(tracks) == 1 and tracks.ids[0] == 1 and session.times.count == 32_000
print(resident_bytes() - before)
"""


@pytest.mark.slow
def test_a_long_run_keeps_pipeline_memory_constant():
    # A fresh interpreter: threads other tests leave running would allocate while this one measures.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run([sys.executable, "-c", LONG_RUN], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout)
    # Every frame's stage times kept would be 30k x 5 x 8 bytes = 1.2 MB.
    assert grown < 512 << 10, f"{grown} bytes more after 30k more frames"


@pytest.mark.slow
def test_frames_of_several_sizes_all_reach_the_video(demo_onnx, video, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    capture = cv2.VideoCapture(str(video))
    for i in range(6):
        frame = capture.read()[1]
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame if i % 2 == 0 else cv2.resize(frame, (200, 300)))
    # A picture too large to decode is skipped and counted, not decoded (ctrt.MAX_IMAGE_PIXELS)
    cv2.imwrite(str(folder / "huge.png"), np.zeros((8200, 8200, 3), np.uint8))
    out = tmp_path / "out"
    result = invoke("run", demo_onnx, "--source", folder, "--save-video", out / "v.mp4", "--save-json", out / "t.jsonl")
    assert result.exit_code == 0, result.output
    assert read_video_frames(out / "v.mp4") == len(read_json_lines(out / "t.jsonl")) == 6
    assert result.output.count("letterboxed") == 1 and "1 unreadable frames skipped" in result.output


@pytest.mark.slow
def test_two_runs_never_write_one_file(demo_onnx, tmp_path):
    long = make_demo_video(tmp_path / "long.mp4", frames=300, size=(320, 240))
    out = tmp_path / "t.jsonl"
    ctrt_bin = os.path.join(os.path.dirname(sys.executable), "ctrt")
    first = subprocess.Popen([ctrt_bin, "run", demo_onnx, "--source", long, "--save-json", out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not out.exists():  # the first run is writing
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run([ctrt_bin, "run", demo_onnx, "--source", long, "--save-json", out, "--save-mot",
                                 tmp_path / "t.txt"], capture_output=True, text=True, timeout=120)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert f"--save-json {out} is being written by another ctrt process (pid {first.pid})" in lines[0]
        assert not (tmp_path / "t.txt").exists()
    finally:
        first.terminate()
        first.wait(60)
    assert len(read_json_lines(out)) > 0  # the first run's lines, whole
    assert not list(tmp_path.glob(".*ctrt-lock"))
    again = invoke("run", demo_onnx, "--source", long, "--save-json", out, "--max-frames", "2")
    assert again.exit_code == 0, again.output
