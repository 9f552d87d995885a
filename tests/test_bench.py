"""`ctrt bench`: statistics, warm-up and duration rules, the JSON schema and the plot."""

import json
from dataclasses import asdict

import numpy as np
import pytest

import trt_simulation as sim
from ctrt.bench import BenchSettings, summarize, timed_loops
from ctrt.engines.builder import BuildOptions, build_engine
from conftest import invoke


def test_statistics_on_known_samples():
    stats = summarize(np.arange(1, 11, dtype=float))
    # numpy's linear percentiles: p90 at rank 8.1 -> 9.1, p95 at 8.55 -> 9.55, p99 at 8.91 -> 9.91.
    assert asdict(stats) == {"count": 10, "min": 1, "mean": 5.5, "median": 5.5, "p90": pytest.approx(9.1),
                     "p95": pytest.approx(9.55), "p99": pytest.approx(9.91), "max": 10}


class FakeClock:
    def __init__(self, step_ms):
        self.now, self.step_ms, self.calls = 0.0, step_ms, []

    def __call__(self):
        return self.now

    def step(self, index):
        self.calls.append(index)
        self.now += self.step_ms / 1e3


def test_warmup_is_excluded_and_duration_and_minimum_hold():
    clock = FakeClock(62.5)  # binary-exact steps, so the comparisons with the limits are exact
    [samples] = timed_loops([clock.step], BenchSettings(warmup_ms=200, warmup_iterations=1, duration_s=0.375,
                                                        min_iterations=2), clock)
    assert len(clock.calls) == 4 + 6  # 4 steps reach 250 >= 200 ms of warm-up, then 6 steps fill 375 ms
    assert samples == [62.5] * 6
    clock = FakeClock(62.5)
    [samples] = timed_loops([clock.step], BenchSettings(warmup_ms=0, warmup_iterations=3, duration_s=0.1,
                                                        min_iterations=10), clock)
    assert len(clock.calls) == 3 + 10 and len(samples) == 10  # warm-up by count; the minimum beats the duration


def test_interleaved_steps_take_turns_until_each_has_its_own_duration():
    clock = FakeClock(0)
    order = []

    def step(name, ms):
        def run(index):
            order.append((name, index))
            clock.now += ms / 1e3
        return run

    fast, slow = timed_loops([step("fast", 62.5), step("slow", 125.0)],
                             BenchSettings(warmup_ms=0, warmup_iterations=1, duration_s=0.25, min_iterations=1), clock)
    # Warm-up one each, then turns: the fast step needs 4 x 62.5 ms of its own time, so the slow one runs 4 too.
    assert order[:2] == [("fast", 0), ("slow", 0)]
    assert order[2:] == [(name, i) for i in range(1, 5) for name in ("fast", "slow")]
    assert fast == [62.5] * 4 and slow == [125.0] * 4


@pytest.mark.slow
def test_bench_interleave_measures_every_model_in_turns(onnx_85, tmp_path):
    out = tmp_path / "bench.json"
    result = invoke("bench", onnx_85, onnx_85, "--interleave", "--duration", "0.1", "--iterations", "3",
                    "--frames", "2", "--warmup", "0", "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["settings"]["interleave"] is True and len(data["models"]) == 2
    for model in data["models"]:
        assert model["pipeline"]["end_to_end"]["count"] >= 3 and model["bare"]["latency"]["count"] >= 3


def test_bench_cli_json_and_plot(onnx_85, tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    result = invoke("bench", onnx_85, onnx_85, "--duration", "0.2", "--iterations", "3", "--frames", "3",
                    "--warmup", "0", "--json", out, "--plot", png)
    assert result.exit_code == 0, result.output
    assert "vs first (end-to-end)" in result.output and "1.0" in result.output
    data = json.loads(out.read_text())
    assert data["schema"] == 1 and len(data["models"]) == 2
    model = data["models"][0]
    assert set(model) == {"model", "backend", "precision", "input_size", "pipeline", "bare", "peak_rss_mb",
                          "device_memory_mb"}
    assert model["device_memory_mb"] is None  # ONNX Runtime on the CPU
    pipeline = model["pipeline"]
    assert set(pipeline["stages"]) == {"preprocess", "pre_hm", "infer", "decode", "track"}
    for stats in list(pipeline["stages"].values()) + [pipeline["end_to_end"], model["bare"]["latency"]]:
        assert set(stats) == {"count", "min", "mean", "median", "p90", "p95", "p99", "max"}
        assert stats["count"] >= 3 and stats["min"] <= stats["median"] <= stats["p99"] <= stats["max"]
    # Stage samples and end-to-end samples come from the same measured frames (no warm-up frames mixed in).
    assert pipeline["stages"]["infer"]["count"] == pipeline["end_to_end"]["count"] == pipeline["frames"]
    assert pipeline["stages"]["infer"]["median"] < pipeline["end_to_end"]["median"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.slow
def test_bench_engine_reports_device_stages(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "m.engine"
    build_engine(onnx_85, engine, BuildOptions())
    out = tmp_path / "b.json"
    result = invoke("bench", engine, "--duration", "0.1", "--iterations", "2", "--frames", "2", "--no-transfers",
                    "--json", out)
    assert result.exit_code == 0, result.output
    model = json.loads(out.read_text())["models"][0]
    stages = model["pipeline"]["stages"]
    assert {"h2d", "compute", "d2h"} <= set(stages) and stages["compute"]["median"] > 0
    # image x2 (swap slots) + pre_img + pre_hm + outputs, in float32 (the simulation has no activation memory)
    io_bytes = 4 * (3 * 3 * 128 * 160 + 128 * 160 + 86 * 32 * 40)
    assert model["device_memory_mb"] == io_bytes / 2**20 and "device memory MB" in result.output


@pytest.mark.slow
def test_cuda_graph_replays_one_graph_per_buffer_layout(monkeypatch, onnx_85, tmp_path):
    import sys

    from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from ctrt.runtime.backends.tensorrt_backend import TensorRTBackend

    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "m.engine"
    build_engine(onnx_85, engine, BuildOptions())
    backend, reference = TensorRTBackend(engine, cuda_graph=True), OnnxRuntimeBackend(onnx_85, "cpu")
    state = sys.modules["cuda.bindings.runtime"].state
    rng = np.random.default_rng(2)
    image, previous = np.zeros((2, 1, 3, 128, 160), np.float32)
    for t in range(5):  # as TrackingPipeline does: write the new frame, feed, swap the two buffers
        image[:] = rng.standard_normal(image.shape)
        if t == 0:
            previous[:] = image
        feed = {"image": image, "pre_img": previous, "pre_hm": rng.random((1, 1, 128, 160), np.float32)}
        expected = reference({k: v.copy() for k, v in feed.items()})
        got = backend(feed)
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
        image, previous = previous, image
    # First call runs eagerly (TensorRT's lazy allocations); then one graph per image-slot layout, replayed.
    assert state.graphs_captured == 2 and state.graph_launches == 4
    out = tmp_path / "g.json"
    result = invoke("bench", engine, "--cuda-graph", "--duration", "0.1", "--iterations", "2", "--frames", "2",
                    "--json", out)
    assert result.exit_code == 0, result.output


def test_bench_rejects_impossible_settings(onnx_85):
    result = invoke("bench", onnx_85, "--batch", "2", "--duration", "0.1", "--iterations", "1", "--frames", "1")
    assert result.exit_code == 2 and "fixed batch of 1" in result.output
    for flag in ("--no-transfers", "--cuda-graph"):
        result = invoke("bench", onnx_85, flag, "--duration", "0.1", "--iterations", "1", "--frames", "1")
        assert result.exit_code == 2 and "TensorRT engines only" in result.output
