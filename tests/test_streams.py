"""Several streams on one model: the same tracks as separate runs, batched, overlapped, live, interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from ctrt.demo import DemoScene, make_demo_video
from ctrt.errors import CtrtError
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ctrt.runtime.capture import FrameReader
from ctrt.runtime.sinks import JsonLinesSink
from ctrt.runtime.sources import FrameSource
from ctrt.runtime.scheduler import Stream, lanes_for, schedule
from ctrt.runtime.reports import RunReport
from ctrt.runtime.stream_setup import stream_names
from conftest import assert_same_tracks, invoke, jsonl

CTRT = str(Path(sys.executable).with_name("ctrt"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Files of different lengths and sizes, an image folder with an unreadable frame, and a video cut short."""
    root = tmp_path_factory.mktemp("sources")
    a = make_demo_video(root / "a.avi", frames=7, size=(640, 360), seed=11)
    b = make_demo_video(root / "b.avi", frames=4, size=(480, 270), seed=12)
    folder = root / "frames"
    folder.mkdir()
    scene = DemoScene((320, 240), seed=13)
    for t in range(5):
        cv2.imwrite(str(folder / f"{t:03d}.jpg"), scene.frame(t)[0])
    (folder / "002b.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    whole = make_demo_video(root / "whole.avi", frames=8, size=(640, 360), seed=14).read_bytes()
    (root / "cut.avi").write_bytes(whole[: len(whole) // 2])  # ends early: half its frames are gone
    return [a, b, folder, root / "cut.avi"]


def run_streams(backend, streams, overlap=True) -> RunReport:
    """The scheduler to its end, its Results left to the sinks."""
    report = RunReport([])
    for _ in schedule(backend, streams, report, overlap=overlap):
        pass
    return report


def separate_runs(model: Path, specs: list[Path], out: Path) -> dict[str, list[dict]]:
    runs = {}
    for spec, name in zip(specs, stream_names([str(s) for s in specs])):
        result = invoke("run", model, "--source", spec, "--save-json", out / f"single-{name}.jsonl")
        assert result.exit_code == 0, result.output
        runs[name] = jsonl(out / f"single-{name}.jsonl")
    return runs


@pytest.mark.slow
def test_batched_streams_track_exactly_as_separate_runs(demo_onnx, sources, tmp_path):
    expected = separate_runs(demo_onnx, sources, tmp_path)
    args = [a for s in sources for a in ("--source", s)]
    result = invoke("run", demo_onnx, *args, "--save-dir", tmp_path / "multi")
    assert result.exit_code == 0, result.output
    assert "4 streams on onnxruntime (CPU)" in result.output
    for name, frames in expected.items():
        assert_same_tracks(jsonl(tmp_path / "multi" / f"{name}.jsonl"), frames)
        assert (tmp_path / "multi" / f"{name}.mp4").stat().st_size > 0
    assert [len(f) for f in expected.values()] == [7, 4, 5, len(expected["cut"])] and len(expected["cut"]) < 8


@pytest.mark.slow
def test_overlapped_lanes_give_the_sequential_result(demo_onnx, sources, tmp_path):
    backend = OnnxRuntimeBackend(demo_onnx, "cpu")
    outputs = {}
    for overlap in (False, True):
        streams = [Stream(name, FrameSource(str(spec)), [JsonLinesSink(tmp_path / f"{overlap}-{name}.jsonl")], "none")
                   for spec, name in zip(sources, stream_names([str(s) for s in sources]))]
        summary = run_streams(backend, streams, overlap=overlap)
        outputs[overlap] = {s.name: (tmp_path / f"{overlap}-{s.name}.jsonl").read_text() for s in streams}
        length = [len(outputs[overlap][s.name].splitlines()) for s in streams]
        # One lane: one call per tick for all four. Two lanes (streams 0, 2 and 1, 3) take turns on the model.
        assert summary.batches == (max(length[0], length[2]) + max(length[1], length[3]) if overlap else max(length))
    assert lanes_for(4, 0, overlap=True) == 2 and lanes_for(4, 0, overlap=False) == 1
    assert lanes_for(5, 2, overlap=False) == 3  # a fixed batch of 2 needs three lanes for five streams
    assert outputs[True] == outputs[False]


class ReusingBackend:
    """Returns its outputs in buffers that the next call overwrites first thing, as TensorRT's pinned buffers and
    Triton's shared memory are; the other lane's call starts while this lane still decodes."""

    def __init__(self, inner):
        self.inner, self.meta, self.name = inner, inner.meta, "reusing"
        self.buffers = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, feed):
        for buffer in self.buffers.values():
            buffer.fill(0.0)
        time.sleep(0.05)  # the other lane decodes meanwhile
        outputs = self.inner(feed)
        for name, array in outputs.items():
            self.buffers.setdefault(name, np.empty((8, *array.shape[1:]), array.dtype))
            np.copyto(self.buffers[name][: len(array)], array)
        return {name: self.buffers[name][: len(array)] for name, array in outputs.items()}


@pytest.mark.slow
def test_overlapped_lanes_keep_outputs_a_backend_reuses(demo_onnx, sources, tmp_path):
    results = {}
    for overlap in (False, True):
        backend = ReusingBackend(OnnxRuntimeBackend(demo_onnx, "cpu"))
        streams = [Stream(name, FrameSource(str(spec)), [JsonLinesSink(tmp_path / f"{overlap}-{name}.jsonl")], "none")
                   for name, spec in zip("abcd", sources)]
        run_streams(backend, streams, overlap=overlap)
        results[overlap] = [(tmp_path / f"{overlap}-{name}.jsonl").read_text() for name in "abcd"]
    assert results[True] == results[False]


@pytest.mark.slow
def test_fixed_batch_engine_pads_and_matches_separate_runs(monkeypatch, demo_onnx, demo_onnx_batch3, sources,
                                                           tmp_path):
    import trt_simulation as sim
    from ctrt.engines.builder import BuildOptions, build_engine

    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "demo_b3.engine"
    build_engine(demo_onnx_batch3, engine, BuildOptions())
    specs = sources[:3]
    expected = separate_runs(demo_onnx, specs, tmp_path)
    result = invoke("run", engine, *[a for s in specs for a in ("--source", s)], "--save-dir", tmp_path / "multi")
    assert result.exit_code == 0, result.output
    assert "tensorrt 10.3.0" in result.output
    for name, frames in expected.items():  # the two shorter streams end first: their slots become padding
        assert_same_tracks(jsonl(tmp_path / "multi" / f"{name}.jsonl"), frames)


def test_batch_too_small_is_one_warning_and_still_serves_every_stream(onnx_85, sources, tmp_path):
    result = invoke("run", onnx_85, "--source", sources[0], "--source", sources[1], "--max-frames", 2,
                    "--save-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "fixed batch of 1, so the 2 streams take 2 calls per tick" in result.output
    assert "with a dynamic batch" in result.output and "a batch of 2" in result.output
    assert all(len(jsonl(tmp_path / "out" / f"{n}.jsonl")) == 2 for n in ("a", "b"))


def test_a_source_that_cannot_open_is_skipped_with_its_name(demo_onnx, sources, tmp_path):
    result = invoke("run", demo_onnx, "--source", sources[1], "--source", tmp_path / "gone.mp4",
                    "--save-dir", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "skipping stream gone: source not found" in result.output
    assert len(jsonl(tmp_path / "out" / "b.jsonl")) == 4
    result = invoke("run", demo_onnx, "--source", tmp_path / "x.mp4", "--source", tmp_path / "y.mp4")
    assert result.exit_code == 2 and "no source could be opened: x: source not found" in result.output


def test_single_file_outputs_need_save_dir_with_several_sources(demo_onnx, sources, tmp_path):
    result = invoke("run", demo_onnx, "--source", sources[0], "--source", sources[1], "--save-json", tmp_path / "o.jsonl")
    assert result.exit_code == 2 and result.output.startswith("error: --save-dir: with several sources")
    listing = tmp_path / "cams.txt"
    listing.write_text(f"# two cameras\n{sources[0]}\n\n{sources[1]}\n")
    result = invoke("run", demo_onnx, "--sources", listing, "--max-frames", 1, "--save-dir", tmp_path / "out")
    assert result.exit_code == 0 and sorted(p.name for p in (tmp_path / "out").glob("*.jsonl")) == ["a.jsonl", "b.jsonl"]


class PacedCamera:
    """A live camera: a new frame every ``period`` seconds, for ``frames`` frames, whether or not anyone reads."""

    def __init__(self, frames: int, period: float) -> None:
        self.frames, self.period = frames, period
        self.start = time.perf_counter()
        self.served = 0
        self.scene = DemoScene((320, 240), seed=21)

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.served == self.frames:
            return False, None
        due = self.start + self.served * self.period
        time.sleep(max(0.0, due - time.perf_counter()))
        self.served += 1
        return True, self.scene.frame(self.served)[0]

    def get(self, prop):
        return 100.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


class SlowBackend:
    """The real backend made slower than the camera, as a small device is."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay, self.meta, self.name = inner, delay, inner.meta, inner.name

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, feed):
        time.sleep(self.delay)
        return self.inner(feed)


@pytest.mark.slow
def test_a_slow_consumer_of_a_live_camera_drops_stale_frames_and_stays_current(demo_onnx):
    backend = SlowBackend(OnnxRuntimeBackend(demo_onnx, "cpu"), delay=0.15)
    camera = FrameSource("0", reconnects=0, capture_factory=lambda *a: PacedCamera(frames=60, period=0.02))
    summary = run_streams(backend, [Stream("cam0", camera, [], "latest")], overlap=False)
    stream = summary.streams[0]
    # 60 frames in 1.2 s, each step takes >= 0.15 s: most frames are dropped, none waits long.
    assert stream.dropped > 30 and stream.frames + stream.dropped == 60
    per_frame = 1e3 * stream.seconds / stream.frames
    assert max(stream.latency_ms) < 2 * per_frame + 100  # bounded: never a growing backlog


def test_policy_none_keeps_every_frame_in_order(sources):
    arrived = threading.Event()
    reader = FrameReader(FrameSource(str(sources[0])), "none", arrived).start()
    frames = []
    while not reader.finished:
        item = reader.take(wait=True)
        if item is not None:
            frames.append(item.frame)
            time.sleep(0.02)  # a slow consumer: the reader waits, nothing is dropped
    assert len(frames) == 7 and reader.dropped == 0


def test_a_waiting_take_gets_each_frame_as_it_is_read():
    # A consumer faster than its source waits in take(); the reader wakes it per frame rather than on a timeout.
    camera = PacedCamera(frames=40, period=0.005)
    camera.scene.frame = lambda i: (np.zeros((240, 320, 3), np.uint8), None)  # reading costs nothing but the pace
    reader = FrameReader(FrameSource("0", reconnects=0, capture_factory=lambda *a: camera), "none",
                         threading.Event()).start()
    delays = []
    while (item := reader.take(wait=True)) is not None:
        delays.append(time.perf_counter() - item.time)
    reader.join()
    assert len(delays) == 40
    assert np.median(delays) < 0.003 and time.perf_counter() - camera.start < 0.4  # 40 x 5 ms paced = 0.2 s


@pytest.mark.slow
def test_ctrl_c_mid_run_leaves_complete_outputs_for_every_stream(demo_onnx, tmp_path):
    videos = [make_demo_video(tmp_path / f"long{i}.mp4", frames=400, size=(320, 240), seed=30 + i) for i in range(2)]
    out = tmp_path / "out"
    process = subprocess.Popen([CTRT, "run", demo_onnx, "--source", videos[0], "--source", videos[1],
                                "--save-dir", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all((out / f"long{i}.jsonl").exists() and (out / f"long{i}.jsonl").stat().st_size for i in range(2)):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stdout + stderr, stderr
    for i in range(2):
        lines = jsonl(out / f"long{i}.jsonl")
        capture = cv2.VideoCapture(str(out / f"long{i}.mp4"))
        frames = 0
        while capture.read()[0]:
            frames += 1
        assert 0 < len(lines) == frames < 400


@pytest.mark.slow
def test_dynamic_batch_engine_takes_the_batch_of_each_tick(monkeypatch, demo_onnx, sources, tmp_path):
    import trt_simulation as sim
    from ctrt.runtime.backends.tensorrt_backend import TensorRTBackend

    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "demo_dynamic.engine"
    result = invoke("build", demo_onnx, "--max-batch", 4, "-o", engine)
    assert result.exit_code == 0, result.output
    assert json.loads(engine.with_name(engine.name + ".json").read_text())["engine"]["max_batch"] == 4
    specs = sources[:3]
    expected = separate_runs(demo_onnx, specs, tmp_path)
    result = invoke("run", engine, *[a for s in specs for a in ("--source", s)], "--save-dir", tmp_path / "multi",
                    "--no-overlap")
    assert result.exit_code == 0, result.output
    for name, frames in expected.items():  # 3, then 2, then 1 stream per call as the shorter ones end
        assert_same_tracks(jsonl(tmp_path / "multi" / f"{name}.jsonl"), frames)
    backend = TensorRTBackend(engine)
    feed = {name: np.zeros((5, *backend.host[name].shape[1:]), backend.host[name].dtype) for name in backend.inputs}
    with pytest.raises(CtrtError, match="batch 5: this engine was built for batches 1 to 4"):
        backend(feed)


@pytest.mark.slow
def test_in_graph_preprocessing_and_decode_work_batched(tmp_path):
    model = tmp_path / "fast.onnx"
    result = invoke("export", "--builtin", "demo", "--input-size", "256x256", "--dynamic-batch", "--no-check",
                    "--preprocess-in-graph", "--source-size", "320x240", "--decode-in-graph", "-o", model)
    assert result.exit_code == 0, result.output
    videos = [make_demo_video(tmp_path / f"v{i}.avi", frames=5 - i, size=(320, 240), seed=41 + i) for i in range(2)]
    expected = separate_runs(model, videos, tmp_path)
    result = invoke("run", model, "--source", videos[0], "--source", videos[1], "--save-dir", tmp_path / "multi")
    assert result.exit_code == 0, result.output
    for name, frames in expected.items():
        assert_same_tracks(jsonl(tmp_path / "multi" / f"{name}.jsonl"), frames)
