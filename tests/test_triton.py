"""Triton Inference Server: repositories checked against Triton's own config schema, then a real tritonserver
(from the nvidia-pytriton wheel, started here on 127.0.0.1) serving them to ``ctrt run``/``bench`` clients that must
track exactly as a local ONNX Runtime run: one client, several streams, 4 and 8 clients at once, a server restart."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ctrt.artifacts import read_meta
from ctrt.demo import make_demo_video
from ctrt.triton.local_server import LocalTriton, Ports
from conftest import assert_same_tracks, invoke, jsonl

pytestmark = pytest.mark.triton  # the tritonserver of the nvidia-pytriton wheel

CTRT = str(Path(sys.executable).with_name("ctrt"))
TRITON_ENV = os.environ.get("CTRT_TRITON_ENV")
needs_server = pytest.mark.skipif(not TRITON_ENV, reason="the server's environment comes from make test "
                                                          "(CTRT_TRITON_ENV, made by make triton-env)")
FP32 = model_config_pb2.TYPE_FP32


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def tensors(entries) -> list[tuple[str, list[int], int]]:
    return [(t.name, list(t.dims), t.data_type) for t in entries]


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_onnx_repositories_parse_with_tritons_schema(demo_onnx, tmp_path):
    repo = tmp_path / "repo"
    assert invoke("triton", demo_onnx, "-o", repo, "--name", "ort", "--max-batch", 4, "--instances", 2,
                  "--ort-tensorrt", "--fp16").exit_code == 0
    result = invoke("triton", demo_onnx, "-o", repo, "--name", "py", "--backend", "python")
    assert result.exit_code == 0 and "dynamic batching up to 8" in result.output

    ort = parse(repo / "ort" / "config.pbtxt")
    assert (ort.name, ort.platform, ort.max_batch_size) == ("ort", "onnxruntime_onnx", 4)
    assert tensors(ort.input) == [("image", [3, 224, 224], FP32), ("pre_img", [3, 224, 224], FP32),
                                  ("pre_hm", [1, 224, 224], FP32)]
    assert tensors(ort.output) == [("hm", [80, 56, 56], FP32), ("reg", [2, 56, 56], FP32),
                                   ("wh", [2, 56, 56], FP32), ("tracking", [2, 56, 56], FP32)]
    assert ort.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.kind, g.count) for g in ort.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_GPU, 2)]
    accelerator = ort.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    meta = read_meta(demo_onnx)
    assert ort.parameters["ctrt_meta"].string_value and (repo / "ort" / "ctrt.json").read_text() == meta.to_json()
    assert (repo / "ort" / "1" / "model.onnx").read_bytes() == demo_onnx.read_bytes()

    py = parse(repo / "py" / "config.pbtxt")
    assert (py.backend, py.platform, py.max_batch_size) == ("python", "", 8)
    assert py.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert sorted(p.name for p in (repo / "py" / "1").iterdir()) == ["model.onnx", "model.py"]
    assert sorted(p.name for p in repo.iterdir()) == ["ort", "py"]  # no staging folder left


def test_engine_repository_takes_the_batch_its_profile_allows(monkeypatch, demo_onnx, demo_onnx_batch3, tmp_path):
    import trt_simulation as sim
    from ctrt.engines.builder import BuildOptions, build_engine

    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "demo.engine"
    build_engine(demo_onnx, engine, BuildOptions(max_batch=4))
    assert invoke("triton", engine, "-o", tmp_path / "repo").exit_code == 0
    config = parse(tmp_path / "repo" / "ctrt" / "config.pbtxt")
    assert (config.platform, config.max_batch_size) == ("tensorrt_plan", 4)  # min(8, the profile's largest)
    assert tensors(config.input)[0] == ("image", [3, 224, 224], FP32)
    assert (tmp_path / "repo" / "ctrt" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    line = one_error_line(invoke("triton", engine, "-o", tmp_path / "repo", "--name", "big", "--max-batch", 8))
    assert "built for batches up to 4" in line and f"ctrt build {demo_onnx.name} --max-batch 8" in line

    fixed = tmp_path / "b3.engine"
    build_engine(demo_onnx_batch3, fixed, BuildOptions())
    line = one_error_line(invoke("triton", fixed, "-o", tmp_path / "repo", "--name", "b3", "--max-batch", 8))
    assert "fixed batch of 3" in line and "--dynamic-batch" in line
    assert invoke("triton", fixed, "-o", tmp_path / "repo", "--name", "b3").exit_code == 0
    config = parse(tmp_path / "repo" / "b3" / "config.pbtxt")  # no batching: dims carry the batch
    assert config.max_batch_size == 0 and tensors(config.input)[0] == ("image", [3, 3, 224, 224], FP32)
    assert not config.HasField("dynamic_batching")


def test_bad_repository_requests_are_one_line_and_write_nothing(demo_onnx, tmp_path):
    plain = tmp_path / "plain.onnx"
    onnx.save(onnx.ModelProto(), str(plain))  # an ONNX without ctrt metadata
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("mine")
    cases = [
        (("triton", plain, "-o", tmp_path / "r1"), "has no ctrt metadata"),
        (("triton", demo_onnx, "-o", folder), "is not a Triton model repository (todo.txt"),
        (("triton", demo_onnx, "-o", folder / "todo.txt"), "is a file"),
        (("triton", demo_onnx, "-o", tmp_path / "r2", "--name", "a/b"), "--name 'a/b'"),
        (("triton", demo_onnx, "-o", tmp_path / "r3", "--backend", "tensorrt"), "--backend 'tensorrt'"),
        (("triton", demo_onnx, "-o", tmp_path / "r4", "--backend", "python", "--ort-tensorrt"), "--ort-tensorrt"),
    ]
    for args, expected in cases:
        assert expected in one_error_line(invoke(*args))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "plain.onnx"]
    assert [p.name for p in folder.iterdir()] == ["todo.txt"]
    assert invoke("triton", demo_onnx, "-o", tmp_path / "r5").exit_code == 0
    assert "r5/ctrt exists; choose another --name" in one_error_line(invoke("triton", demo_onnx, "-o", tmp_path / "r5"))


# ---- a real server ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def repository(demo_onnx, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("triton") / "repo"
    # A 50 ms window lets requests from clients that are a few ms apart meet in one batch on this 2-core machine.
    result = invoke("triton", demo_onnx, "-o", repo, "--backend", "python", "--queue-delay-us", 50000)
    assert result.exit_code == 0, result.output
    return repo


def local_server(repository: Path) -> LocalTriton:
    if not TRITON_ENV:
        pytest.skip("the server's environment comes from make test (CTRT_TRITON_ENV)")
    return LocalTriton(repository, Path(TRITON_ENV), log=repository.parent / "server.log")


def local_runs(root: Path, model: Path, count: int, frames: int, seed: int) -> list[tuple[Path, list[dict]]]:
    """``count`` 320x240 demo videos, each with its tracks from a local ONNX Runtime run of ``model``."""
    made = []
    for i in range(count):
        video = make_demo_video(root / f"v{i}.avi", frames=frames, size=(320, 240), seed=seed + i)
        result = invoke("run", model, "--source", video, "--save-json", root / f"v{i}.local.jsonl")
        assert result.exit_code == 0, result.output
        made.append((video, jsonl(root / f"v{i}.local.jsonl")))
    return made


@pytest.fixture(scope="module")
def server(repository):
    with local_server(repository) as running:
        yield running


@pytest.fixture(scope="module")
def videos(tmp_path_factory, demo_onnx) -> list[tuple[Path, list[dict]]]:
    return local_runs(tmp_path_factory.mktemp("videos"), demo_onnx, 8, 4, 200)


def url(server: LocalTriton, scheme: str = "triton") -> str:
    port = server.ports.grpc if scheme == "triton" else server.ports.http
    return f"{scheme}://127.0.0.1:{port}/ctrt"


def statistics(server: LocalTriton) -> tuple[int, int]:
    import tritonclient.grpc as grpc

    with grpc.InferenceServerClient(server.grpc_url) as client:
        stats = client.get_inference_statistics("ctrt", as_json=True)["model_stats"][0]
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


@needs_server
@pytest.mark.parametrize("scheme, shm", [("triton", False), ("http", True)])
def test_one_client_tracks_as_a_local_run(server, videos, tmp_path, scheme, shm):
    video, expected = videos[0]
    out = tmp_path / "t.jsonl"
    result = invoke("run", url(server, scheme), "--source", video, "--save-json", out, *(["--shm"] if shm else []))
    assert result.exit_code == 0, result.output
    assert f"on triton ({'grpc' if scheme == 'triton' else 'http'} 127.0.0.1" in result.output
    assert "built-in demo model" in result.output  # the metadata came from the server's config
    assert_same_tracks(jsonl(out), expected)


@needs_server
@pytest.mark.parametrize("scheme, shm", [("triton", False), ("http", True)])
def test_several_streams_on_triton_track_as_separate_local_runs(server, videos, tmp_path, scheme, shm):
    """Overlapped lanes call the model from a worker thread: both clients must work from there."""
    streams_track_exactly(url(server, scheme), videos[:3], tmp_path / "multi", *(["--shm"] if shm else []))


def streams_track_exactly(address: str, videos: list[tuple[Path, list[dict]]], folder: Path, *args: str) -> str:
    """One ``ctrt run`` of every video as a stream of its own; each stream's tracks as its local run's."""
    sources = [a for video, _ in videos for a in ("--source", video)]
    result = invoke("run", address, *sources, "--save-dir", folder, *args)
    assert result.exit_code == 0, result.output
    for video, expected in videos:
        assert_same_tracks(jsonl(folder / f"{video.stem}.jsonl"), expected)
    return result.output


@needs_server
@pytest.mark.parametrize("clients", [4, 8])
def test_concurrent_clients_are_batched_and_each_tracks_exactly(server, videos, tmp_path, clients):
    inferences, executions = clients_track_exactly(server, videos[:clients], tmp_path)
    assert inferences == 4 * clients  # every frame once: nothing lost, nothing sent twice
    assert executions < inferences  # the dynamic batcher ran requests of different clients together


def clients_track_exactly(server: LocalTriton, videos: list[tuple[Path, list[dict]]], tmp_path: Path) -> tuple[int, int]:
    """A ``ctrt run`` process per video, all at once, each exact; the model's inferences and executions meanwhile."""
    before = statistics(server)
    procs = [subprocess.Popen([CTRT, "run", url(server), "--source", str(video), "--save-json",
                               str(tmp_path / f"c{i}.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for i, (video, _) in enumerate(videos)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    for i, (_, expected) in enumerate(videos):
        assert_same_tracks(jsonl(tmp_path / f"c{i}.jsonl"), expected)
    after = statistics(server)
    return after[0] - before[0], after[1] - before[1]


@needs_server
def test_bench_measures_a_served_model(server, tmp_path):
    result = invoke("bench", url(server), "--frames", 2, "--warmup", 0, "--duration", 0.3, "--iterations", 2,
                    "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    assert "triton (grpc" in result.output and (tmp_path / "b.json").stat().st_size > 0


def run_through_a_restart(repository: Path, video: Path, out: Path, log: Path) -> str:
    """``ctrt run`` of ``video`` against a server killed (SIGKILL: a crash or a pulled cable) after the third frame
    and started again; the client's output, once it succeeded."""
    with LocalTriton(repository, Path(TRITON_ENV or ""), log=log) as server:
        client = subprocess.Popen([CTRT, "run", url(server), "--source", str(video), "--save-json", str(out),
                                   "--reconnects", "8"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while (not out.exists() or len(out.read_text().splitlines()) < 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        time.sleep(1.0)
        server.start()
        server.wait_ready()
        output = client.communicate(timeout=300)[0]
    assert client.returncode == 0, output
    return output


@needs_server
def test_server_killed_and_restarted_mid_run_loses_no_frame(repository, demo_onnx, tmp_path):
    video = make_demo_video(tmp_path / "long.avi", frames=10, size=(320, 240), seed=300)
    expected = tmp_path / "local.jsonl"
    assert invoke("run", demo_onnx, "--source", video, "--save-json", expected).exit_code == 0
    out = tmp_path / "t.jsonl"
    output = run_through_a_restart(repository, video, out, tmp_path / "server.log")
    assert "unreachable" in output and "is back after" in output
    assert_same_tracks(jsonl(out), jsonl(expected))  # every frame once, in order, as if nothing happened


def test_wrong_server_or_model_is_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    line = one_error_line(invoke("run", f"triton://127.0.0.1:{port}/ctrt", "--source", tmp_path / "x.mp4"))
    assert f"cannot reach Triton at triton://127.0.0.1:{port}/ctrt" in line
    assert "give a server and a model" in one_error_line(invoke("run", "triton://127.0.0.1:8001", "--source", "0"))
    assert "--shm applies to a model served by Triton" in one_error_line(
        invoke("run", tmp_path / "m.onnx", "--shm", "--source", "0"))


@needs_server
def test_model_not_loaded_lists_the_loaded_ones(server, tmp_path):
    line = one_error_line(invoke("run", url(server).replace("/ctrt", "/other"), "--source", tmp_path / "x.mp4"))
    assert "model 'other' is not loaded" in line and "loaded: ctrt" in line


@needs_server
def test_serve_refuses_a_port_in_use(server, repository):
    result = subprocess.run([CTRT, "serve", str(repository), "--grpc-port", str(server.ports.grpc)],
                            capture_output=True, text=True, env={**os.environ, "CTRT_TRITON_ENV": TRITON_ENV or ""})
    assert result.returncode == 2 and result.stderr.strip() == (
        f"error: --grpc-port {server.ports.grpc} is in use on 127.0.0.1; choose another port"), result.stderr


@needs_server
def test_serve_runs_until_sigterm(repository, tmp_path):
    ports = Ports.free()
    proc = subprocess.Popen([CTRT, "serve", str(repository), "--grpc-port", str(ports.grpc), "--http-port",
                             str(ports.http), "--metrics-port", str(ports.metrics)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CTRT_TRITON_ENV": TRITON_ENV or ""})
    line = proc.stdout.readline()  # printed once the server is ready
    assert f"gRPC 127.0.0.1:{ports.grpc}" in line, line + proc.stderr.read()
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopping tritonserver (SIGTERM)" in out, out + err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.grpc))  # the server is gone and its port free


def test_a_killed_serve_takes_its_server_with_it(repository):
    """SIGKILL runs none of ctrt's cleanup; the kernel ends the server it started (parent-death signal)."""
    ports = Ports.free()
    proc = subprocess.Popen([CTRT, "serve", str(repository), "--grpc-port", str(ports.grpc), "--http-port",
                             str(ports.http), "--metrics-port", str(ports.metrics)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CTRT_TRITON_ENV": TRITON_ENV or ""})
    line = proc.stdout.readline()
    assert f"gRPC 127.0.0.1:{ports.grpc}" in line, line + proc.stderr.read()
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", ports.grpc))
            break
        except OSError:
            assert time.monotonic() < deadline, "tritonserver outlived the ctrt serve that started it"
            time.sleep(0.2)


# ---- stateful: the previous frame stays on the server ----------------------------------------------------------

FAST_FLAGS = ("--dynamic-batch", "--preprocess-in-graph", "--source-size", "320x240", "--decode-in-graph")


@pytest.fixture(scope="module")
def fast_onnx(tmp_path_factory) -> Path:
    """The demo model on the fast path: raw 320x240 frames in, top-K out, any batch."""
    out = tmp_path_factory.mktemp("fast") / "fast.onnx"
    result = invoke("export", "--builtin", "demo", "--input-size", "224x224", *FAST_FLAGS, "--no-check", "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_stateful_repositories_parse_with_tritons_schema(fast_onnx, tmp_path):
    repo = tmp_path / "repo"
    result = invoke("triton", fast_onnx, "-o", repo, "--stateful", "--backend", "python", "--sequence-idle-s", 30,
                    "--max-sequences", 16, "--max-batch", 4)
    assert result.exit_code == 0 and "sequence batching of up to 16 streams" in result.output, result.output
    assert invoke("triton", fast_onnx, "-o", repo, "--name", "gpu", "--stateful").exit_code == 0
    assert sorted(p.name for p in repo.iterdir()) == ["ctrt", "ctrt_net", "gpu", "gpu_net"]

    front = parse(repo / "ctrt" / "config.pbtxt")
    assert (front.backend, front.max_batch_size) == ("python", 4)
    assert [(t.name, list(t.dims), t.optional) for t in front.input] == [
        ("frame", [240, 320, 3], True), ("frame_jpeg", [1], True), ("pre_frame", [240, 320, 3], True),
        ("pre_frame_jpeg", [1], True), ("pre_boxes", [100, 5], True)]
    assert [t.name for t in front.output] == ["scores", "classes", "xs", "ys", "offset", "size", "tracking"]
    batcher = front.sequence_batching
    assert batcher.max_sequence_idle_microseconds == 30_000_000 and batcher.oldest.max_candidate_sequences == 16
    kinds = model_config_pb2.ModelSequenceBatching.Control
    assert [(c.name, c.control[0].kind) for c in batcher.control_input] == [
        ("START", kinds.CONTROL_SEQUENCE_START), ("END", kinds.CONTROL_SEQUENCE_END),
        ("CORRID", kinds.CONTROL_SEQUENCE_CORRID)]
    # The server draws pre_hm with ctrt's own renderer, byte for byte the same file.
    assert (repo / "ctrt" / "1" / "ctrt_prehm.py").read_bytes() == (
        Path(__file__).parents[1] / "ctrt" / "runtime" / "prehm.py").read_bytes()
    net = parse(repo / "ctrt_net" / "config.pbtxt")
    assert (net.backend, net.max_batch_size) == ("python", 4)
    assert tensors(net.input)[0] == ("frame", [240, 320, 3], model_config_pb2.TYPE_UINT8)
    gpu_net = parse(repo / "gpu_net" / "config.pbtxt")
    assert gpu_net.platform == "onnxruntime_onnx" and parse(repo / "gpu" / "config.pbtxt").backend == "python"


def test_stateful_engine_repository_serves_the_plan_behind_the_front(monkeypatch, fast_onnx, tmp_path):
    import trt_simulation as sim
    from ctrt.engines.builder import BuildOptions, build_engine

    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "fast.engine"
    build_engine(fast_onnx, engine, BuildOptions(max_batch=4))
    assert invoke("triton", engine, "-o", tmp_path / "repo", "--stateful").exit_code == 0
    front = parse(tmp_path / "repo" / "ctrt" / "config.pbtxt")
    net = parse(tmp_path / "repo" / "ctrt_net" / "config.pbtxt")
    assert (front.backend, front.max_batch_size, net.platform, net.max_batch_size) == ("python", 4, "tensorrt_plan", 4)
    assert (tmp_path / "repo" / "ctrt_net" / "1" / "model.plan").read_bytes() == engine.read_bytes()


def test_server_draws_the_pre_hm_a_local_run_draws(fast_onnx):
    """What a stateful client sends (boxes in input pixels and scores, zero rows as padding) drawn as the server
    does equals the local pre_hm bit for bit."""
    from ctrt.artifacts import read_meta
    from ctrt.runtime.detections import Detections
    from ctrt.runtime.pipeline import StreamState
    from ctrt.runtime.prehm import PreHeatmapRenderer

    meta = read_meta(fast_onnx)
    local = StreamState(meta)
    stateful = StreamState(replace(meta, inputs=["frame", "pre_boxes", "sequence"]))
    rng = np.random.default_rng(3)
    xy = rng.uniform(-20, 300, (12, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(2, 90, (12, 2))], 1).astype(np.float32)
    dets = Detections.create(boxes, rng.uniform(0.05, 1, 12).astype(np.float32), np.ones(12, np.int32), xy,
                             np.zeros((12, 2), np.float32))
    frame = np.zeros((240, 320, 3), np.uint8)
    for state in (local, stateful):
        state.prepare(frame)
        state.tracker.step(dets)
        state.prepare(frame)
    rows = stateful.feed()["pre_boxes"][0]
    assert 0 < (rows[:, 4] > 0).sum() < len(rows)
    drawn = np.empty(meta.input_size, np.float32)
    PreHeatmapRenderer(*meta.input_size).draw(rows[rows[:, 4] > 0, :4], drawn)
    assert drawn.any() and np.array_equal(drawn, local.feed()["pre_hm"][0, 0])


@pytest.fixture(scope="module")
def stateful_repository(fast_onnx, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("stateful") / "repo"
    for args in (("--stateful", "--sequence-idle-s", 20), ("--name", "plain")):
        result = invoke("triton", fast_onnx, "-o", repo, "--backend", "python", "--queue-delay-us", 50000, *args)
        assert result.exit_code == 0, result.output
    return repo


@pytest.fixture(scope="module")
def stateful_server(stateful_repository):
    with local_server(stateful_repository) as running:
        yield running


@pytest.fixture(scope="module")
def fast_videos(tmp_path_factory, fast_onnx) -> list[tuple[Path, list[dict]]]:
    return local_runs(tmp_path_factory.mktemp("fast_videos"), fast_onnx, 4, 5, 400)


@needs_server
def test_stateful_streams_of_one_client_track_as_local_runs(stateful_server, fast_videos, tmp_path):
    output = streams_track_exactly(url(stateful_server), fast_videos[:3], tmp_path / "multi")
    assert "stateful, raw frames" in output


@needs_server
def test_stateful_concurrent_clients_each_track_exactly(stateful_server, fast_videos, tmp_path):
    inferences, executions = clients_track_exactly(stateful_server, fast_videos, tmp_path)
    assert inferences == len(fast_videos) * (5 + 1)  # every frame once, and one closing request per stream
    assert executions < inferences  # the sequence batcher ran requests of different clients together


@needs_server
def test_jpeg_transport_keeps_the_ids(stateful_server, fast_videos, tmp_path):
    args = [a for video, _ in fast_videos for a in ("--source", video)]
    result = invoke("run", url(stateful_server), *args, "--transport", "jpeg:90", "--save-dir", tmp_path / "jpeg")
    assert result.exit_code == 0 and "stateful, jpeg:90" in result.output, result.output
    same = total = 0
    for video, expected in fast_videos:
        got = jsonl(tmp_path / "jpeg" / f"{video.stem}.jsonl")
        assert len(got) == len(expected)
        same += sum([r["tracking_id"] for r in a["results"]] == [r["tracking_id"] for r in b["results"]]
                    for a, b in zip(got, expected))
        total += len(expected)
    assert same / total >= 0.99


@needs_server
def test_stateful_server_restarted_mid_run_restarts_the_sequence(stateful_repository, fast_onnx, tmp_path):
    video = make_demo_video(tmp_path / "long.avi", frames=10, size=(320, 240), seed=500)
    expected = tmp_path / "local.jsonl"
    assert invoke("run", fast_onnx, "--source", video, "--save-json", expected).exit_code == 0
    out = tmp_path / "t.jsonl"
    output = run_through_a_restart(stateful_repository, video, out, tmp_path / "server.log")
    assert "lost stream sequence" in output and "(restart 1)" in output
    assert_same_tracks(jsonl(out), jsonl(expected))  # the restarted sequence got its previous frame: exact


@needs_server
def test_stateful_mistakes_are_one_line(stateful_server, demo_onnx, tmp_path):
    assert "takes no previous frame (pre_frame)" in one_error_line(
        invoke("triton", demo_onnx, "-o", tmp_path / "r", "--stateful"))
    assert not (tmp_path / "r").exists()
    source = ("--source", tmp_path / "x.avi")
    assert "cannot decode JPEG frames; serve a repository written by ctrt triton --stateful" in one_error_line(
        invoke("run", url(stateful_server).replace("/ctrt", "/plain"), *source, "--transport", "jpeg"))
    for spec, message in (("jpeg:101", "JPEG quality is a whole number from 1 to 100"),
                          ("jpeg:0", "JPEG quality is a whole number from 1 to 100"), ("png", "give raw or jpeg[:QUALITY]")):
        assert f"--transport {spec!r}: {message}" in one_error_line(
            invoke("run", url(stateful_server), *source, "--transport", spec))
    assert "--transport applies to a model served by Triton" in one_error_line(
        invoke("run", demo_onnx, *source, "--transport", "raw"))


@needs_server
def test_stateful_model_from_python(stateful_server, fast_videos):
    import ctrt

    video, expected = fast_videos[0]
    with ctrt.load(url(stateful_server), transport="raw") as model:
        assert "stateful, raw frames" in model.backend.name
        session = model.session()
        capture = cv2.VideoCapture(str(video))
        ids = []
        while (frame := capture.read()[1]) is not None:
            ids.append(session.update(frame).tracks.ids.tolist())
    assert ids == [[r["tracking_id"] for r in frame["results"]] for frame in expected]
    with pytest.raises(ctrt.CtrtError, match="JPEG quality is a whole number"):
        ctrt.load(url(stateful_server), transport="jpeg:0")
