"""TensorRT builder and backend against the simulation in trt_simulation.py (no GPU here), and without TensorRT."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import trt_simulation as sim
from ctrt.artifacts import read_meta, sha256_file, sidecar_path
from ctrt.engines.builder import BuildOptions, build_engine
from ctrt.errors import CtrtError
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ctrt.runtime.backends.tensorrt_backend import TensorRTBackend
from ctrt.runtime.cuda_memory import open_cuda
from ctrt.demo import DemoScene
from ctrt.runtime.pipeline import Session
from conftest import invoke


def plan_header(engine: Path) -> dict:
    data = engine.read_bytes()
    return json.loads(data[4 : 4 + int.from_bytes(data[:4], "little")])


def test_without_tensorrt_build_and_run_say_what_is_missing(onnx_85, tmp_path):
    assert "tensorrt" not in sys.modules or not hasattr(sys.modules["tensorrt"], "Builder")
    (tmp_path / "m.engine").write_bytes(b"plan")
    for args in (["build", onnx_85, "--fp16", "-o", tmp_path / "x.engine"], ["run", tmp_path / "m.engine"]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        line = result.output.strip()
        assert line.startswith("error: TensorRT is not installed here") and "ctrt run MODEL.onnx" in line
        assert len(line.splitlines()) == 1
    assert not (tmp_path / "x.engine").exists()


@pytest.mark.slow
@pytest.mark.parametrize("version", ["8.5.2", "10.3.0", "11.4.1"])
def test_fp32_build_on_every_supported_major(monkeypatch, onnx_85, tmp_path, version):
    sim.install(monkeypatch, version)
    engine = tmp_path / "m.engine"
    result = invoke("build", onnx_85, "-o", engine, "--workspace", "1")
    assert result.exit_code == 0, result.output
    header = plan_header(engine)
    assert header["version"] == version and header["workspace"] == 1 << 30 and not header["fp32_layers"]
    assert header["flags"] == (1 if version.startswith("8") else 0)  # EXPLICIT_BATCH only before TensorRT 10
    meta = read_meta(engine)
    assert meta.kind == "engine" and meta.precision == "fp32"
    assert meta.engine and meta.engine.tensorrt == version and meta.engine.gpu == "Orin (simulated)"
    assert meta.engine.compute_capability == "8.7" and meta.engine.onnx_sha256 == sha256_file(onnx_85)
    assert meta.graph == read_meta(onnx_85).graph and meta.engine.io["hm"] == ("float32", [1, 80, 32, 40])
    assert f"ctrt run {engine} --source 0" in result.output


@pytest.mark.slow
def test_fp16_keeps_exactly_the_heatmap_head_in_fp32(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "fp16.engine"
    result = invoke("build", onnx_85, "--fp16", "-o", engine)
    assert result.exit_code == 0, result.output
    header = plan_header(engine)
    assert header["fp16"] and sorted(header["fp32_layers"]) == ["/model/hm/hm.0/Conv", "/model/hm/hm.1/Relu", "/model/hm/hm.2/Conv"]
    assert read_meta(engine).precision == "fp16" and "3 layers kept FP32" in result.output


def test_tensorrt11_refuses_fp16_flag_on_fp32_onnx(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "11.4.1")
    result = invoke("build", onnx_85, "--fp16", "-o", tmp_path / "x.engine")
    assert result.exit_code == 2 and "Export an FP16 model (ctrt export ... --fp16)" in result.output
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def fp16_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp16") / "h68_fp16.onnx"
    result = invoke("export", "--random-init", "--arch", "hardnet_68", "--input-size", "128x160", "--fp16", "-o", out)
    assert result.exit_code == 0, result.output
    assert "vs PyTorch FP32, tolerance 0.05" in result.output
    return out


@pytest.mark.slow
def test_fp16_export_keeps_io_heatmap_head_and_context_in_fp32(fp16_onnx):
    import onnx

    model = onnx.load(str(fp16_onnx))
    types = {i.name: i.data_type for i in model.graph.initializer}
    half = sum(t == onnx.TensorProto.FLOAT16 for t in types.values())
    assert half > 100 and read_meta(fp16_onnx).precision == "fp16"
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for v in list(model.graph.input) + list(model.graph.output))
    hm_convs = [n for n in model.graph.node if n.op_type == "Conv" and "/hm/" in n.name]
    assert len(hm_convs) == 2 and all(types[n.input[1]] == onnx.TensorProto.FLOAT for n in hm_convs)
    means = [n for n in model.graph.node if n.op_type == "ReduceMean"]
    producers = {o: n for n in model.graph.node for o in n.output}
    assert len(means) == 4 and all(producers[n.input[0]].op_type == "Cast" for n in means)  # reduced in FP32


@pytest.mark.parametrize("version, flags, fp16_flag", [("8.5.2", 1, True), ("10.3.0", 2, False), ("11.4.1", 0, False)])
def test_fp16_onnx_builds_strongly_typed_where_it_can(monkeypatch, fp16_onnx, tmp_path, version, flags, fp16_flag):
    sim.install(monkeypatch, version)
    engine = tmp_path / "h.engine"
    result = invoke("build", fp16_onnx, "-o", engine)
    assert result.exit_code == 0, result.output
    header = plan_header(engine)
    # 8.5: explicit batch + the FP16 flag (weakly typed); 10: STRONGLY_TYPED; 11: strongly typed by default.
    assert header["flags"] == flags and header["fp16"] == fp16_flag and read_meta(engine).precision == "fp16"


@pytest.mark.slow
def test_timing_cache_is_read_and_written_back(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "10.3.0")
    cache = tmp_path / "timing.cache"
    for expected_builds in (1, 2):
        assert invoke("build", onnx_85, "--timing-cache", cache, "-o", tmp_path / "m.engine").exit_code == 0
        assert json.loads(cache.read_bytes())["builds"] == expected_builds


@pytest.mark.slow
def test_dla_core_with_gpu_fallback(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "10.3.0", dla_cores=2)
    assert invoke("build", onnx_85, "--fp16", "--dla-core", "1", "-o", tmp_path / "dla.engine").exit_code == 0
    assert plan_header(tmp_path / "dla.engine")["dla_core"] == 1
    result = invoke("build", onnx_85, "--dla-core", "2", "-o", tmp_path / "bad.engine")
    assert result.exit_code == 2 and "has 2 DLA cores" in result.output


@pytest.mark.slow
def test_parser_and_file_errors_are_reported(monkeypatch, onnx_85, tmp_path):
    import onnx

    sim.install(monkeypatch, "10.3.0")
    model = onnx.load(str(onnx_85))
    model.graph.node[3].op_type = "DCNv2"
    custom = tmp_path / "custom.onnx"
    onnx.save(model, str(custom))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_85.read_bytes()[:1000])
    for path in (custom, truncated):
        sidecar_path(path).write_text(sidecar_path(onnx_85).read_text())
    result = invoke("build", custom, "-o", tmp_path / "x.engine")
    assert result.exit_code == 2, result.output
    assert "TensorRT 10.3.0's ONNX parser would refuse" in result.output and "(DCNv2): no importer" in result.output
    # What the parser refuses beyond the rules ctrt knows reaches the user in the parser's own words.
    monkeypatch.setattr("ctrt.engines.builder.check_file", lambda path, lines: [])
    result = invoke("build", custom, "-o", tmp_path / "x.engine")
    assert result.exit_code == 2, result.output
    assert "parser rejected" in result.output and "node 3: No importer registered for op: DCNv2" in result.output
    result = invoke("build", truncated, "-o", tmp_path / "x.engine")
    assert result.exit_code == 2 and "is not a readable ONNX file" in result.output
    assert not (tmp_path / "x.engine").exists()


@pytest.fixture
def engine_85(monkeypatch, onnx_85, tmp_path):
    sim.install(monkeypatch, "10.3.0")
    path = tmp_path / "m.engine"
    build_engine(onnx_85, path, BuildOptions())
    return path


@pytest.mark.slow
def test_engine_outputs_equal_onnxruntime_and_pre_img_stays_on_device(engine_85, onnx_85):
    trt_backend = TensorRTBackend(engine_85)
    ort_backend = OnnxRuntimeBackend(onnx_85, "cpu")
    state = sys.modules["cuda.bindings.runtime"].state
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((1, 3, 128, 160), np.float32) for _ in range(3)]
    pre_hm = rng.random((1, 1, 128, 160), np.float32)
    image, previous = frames[0].copy(), frames[0].copy()
    for t in range(3):
        image[:] = frames[t]
        feed = {"image": image, "pre_img": previous, "pre_hm": pre_hm}
        before = state.bytes_to_device
        got = trt_backend(feed)
        expected = ort_backend({k: v.copy() for k, v in feed.items()})
        for name in expected:
            assert np.array_equal(got[name], expected[name]), name
        image_bytes, hm_bytes = image.nbytes, pre_hm.nbytes
        # The first call uploads pre_img; afterwards the previous image is reused on the device.
        assert state.bytes_to_device - before == image_bytes * (2 if t == 0 else 1) + hm_bytes
        image, previous = previous, image  # what TrackingPipeline does


@pytest.mark.slow
def test_a_missing_synchronize_is_caught(engine_85, monkeypatch):
    backend = TensorRTBackend(engine_85)
    monkeypatch.setattr(backend.cuda, "synchronize", lambda stream: None)
    rng = np.random.default_rng(1)
    feed = {"image": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_img": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_hm": rng.random((1, 1, 128, 160), np.float32)}
    # Nothing has run: the CUDA events are not complete (cudaErrorNotReady on a GPU) and the outputs are empty.
    with pytest.raises(CtrtError, match="cudaEventElapsedTime failed"):
        backend(feed)
    assert not backend.host["hm"].any()


@pytest.mark.slow
def test_unset_address_is_caught(engine_85, monkeypatch):
    backend = TensorRTBackend(engine_85)
    backend.context.addresses.pop("tracking")
    feed = {name: np.zeros(backend.host[name].shape, np.float32) for name in backend.inputs}
    with pytest.raises(sim.SimulationError, match="tracking not set"):
        backend(feed)


def test_sidecar_written_before_the_typed_records_still_reads(engine_85):
    """Older ctrt kept the export's and the build's facts in one flat ``extra`` dict."""
    meta = read_meta(engine_85)
    data = json.loads(sidecar_path(engine_85).read_text())
    graph, engine = data.pop("graph"), data.pop("engine")
    data.pop("quantization"), data.pop("calibration")
    data["extra"] = {"opset": graph["opset"], "simplified": graph["simplified"], "preprocess": "cpu",
                     "decode": "host", **engine}
    sidecar_path(engine_85).write_text(json.dumps(data))
    assert read_meta(engine_85) == meta and meta.graph and meta.engine and meta.engine.io


def test_engine_from_other_tensorrt_or_gpu_is_refused(engine_85, monkeypatch):
    meta = json.loads(sidecar_path(engine_85).read_text())
    for field, value, message in (("tensorrt", "8.5.2", "built with TensorRT 8.5.2, this machine has 10.3.0"),
                                  ("gpu", "Xavier", "was built for Xavier (SM 8.7), this GPU is Orin (simulated) (SM 8.7)")):
        changed = dict(meta, engine=dict(meta["engine"], **{field: value}))
        sidecar_path(engine_85).write_text(json.dumps(changed))
        with pytest.raises(CtrtError, match="rebuild it here: ctrt build model_last_128x160.onnx"):
            TensorRTBackend(engine_85)
        with pytest.raises(CtrtError, match=re.escape(message)):
            TensorRTBackend(engine_85)


@pytest.mark.slow
def test_run_engine_gives_the_same_tracks_as_onnx(engine_85, onnx_85, tmp_path):
    from ctrt.demo import make_demo_video

    video = make_demo_video(tmp_path / "v.mp4", frames=5, size=(320, 240))
    for name, model in (("onnx", onnx_85), ("engine", engine_85)):
        result = invoke("run", model, "--source", video, "--save-json", tmp_path / f"{name}.jsonl")
        assert result.exit_code == 0, result.output
    assert "tensorrt 10.3.0 (Orin (simulated), fp32)" in result.output
    onnx_lines = (tmp_path / "onnx.jsonl").read_text().splitlines()
    engine_lines = (tmp_path / "engine.jsonl").read_text().splitlines()
    assert len(onnx_lines) == 5 and onnx_lines == engine_lines


@pytest.mark.slow
def test_session_on_an_engine_uses_cuda_python_and_tracks_as_onnxruntime(engine_85, onnx_85):
    assert open_cuda().name == "cuda-python"
    backend = TensorRTBackend(engine_85)
    assert backend.cuda.name == "cuda-python"
    engine, reference = Session(backend), Session(OnnxRuntimeBackend(onnx_85, "cpu"))
    scene = DemoScene((320, 240), seed=3)
    for t in range(3):
        frame = scene.frame(t)[0]
        got, expected = engine.update(frame), reference.update(frame)
        assert got.index == expected.index == t and got.to_json() == expected.to_json()
