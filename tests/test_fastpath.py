"""The GPU fast path on ONNX Runtime: in-graph letterbox and top-K decode agree with the CPU path."""

import io
import json

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import trt_simulation as sim
from ctrt.artifacts import read_meta
from ctrt.demo import make_demo_video
from ctrt.engines.builder import BuildOptions, build_engine
from ctrt.export.fastpath import InGraph
from ctrt.export.parity import sample_image
from ctrt.export.onnx_export import ExportOptions
from ctrt.model.config import STD_BGR, ModelConfig
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from ctrt.runtime.backends.tensorrt_backend import TensorRTBackend
from ctrt.runtime.decode import Decoder, decode_topk
from ctrt.runtime.preprocess import FrameGeometry, Preprocessor
from conftest import invoke

SOURCE = (240, 320)  # H0, W0 of the test video
# OpenCV rounds its warp to uint8 (<= 0.5 grey level) and interpolates at 1/32 px with 15-bit weights; the graph
# stays in float. One grey level, in normalised units, bounds both (measured: 0.50 levels on photographs).
LETTERBOX_ATOL = 1.0 / 255 / min(STD_BGR)


class LetterboxOnly(nn.Module):
    def __init__(self, graph):
        super().__init__()
        self.graph = graph

    def forward(self, frame):
        return self.graph._letterbox(frame)


@pytest.mark.parametrize("source_hw, input_hw", [((360, 640), (256, 256)), ((300, 451), (128, 160)),
                                                 ((720, 1280), (512, 512))])
def test_graph_letterbox_matches_cpu_preprocessing(source_hw, input_hw):
    graph = InGraph(nn.Identity(), ModelConfig(85, heads={"hm": 80}, pre_img=False, pre_hm=False),
                    ExportOptions(*input_hw, source_hw=source_hw))
    buffer = io.BytesIO()
    torch.onnx.export(LetterboxOnly(graph), (torch.zeros(1, *source_hw, 3, dtype=torch.uint8),), buffer,
                      dynamo=False, opset_version=17, input_names=["frame"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    assert "GridSample" in {n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node}
    for name in ("astronaut", "rocket"):
        frame = cv2.resize(sample_image(name), (source_hw[1], source_hw[0]))
        expected = np.empty((3, *input_hw), np.float32)
        Preprocessor(*input_hw)(frame, expected)
        got = session.run(None, {"frame": frame[None]})[0][0]
        assert np.abs(got - expected).max() <= LETTERBOX_ATOL
        assert np.abs(got - expected).mean() < LETTERBOX_ATOL / 4


@pytest.fixture(scope="module")
def fast_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast")
    paths = {}
    for name, flags in (("plain", []), ("pre", ["--preprocess-in-graph", "--source-size", "320x240"]),
                        ("dec", ["--decode-in-graph", "--topk", "100"]),
                        ("dec_any_batch", ["--decode-in-graph", "--dynamic-batch"]),
                        ("both", ["--preprocess-in-graph", "--source-size", "320x240", "--decode-in-graph"])):
        paths[name] = folder / f"{name}.onnx"
        result = invoke("export", "--random-init", "--arch", "hardnet_68", "--input-size", "128x160",
                        "-o", paths[name], *flags)
        assert result.exit_code == 0, result.output
    return paths


@pytest.mark.slow
def test_fast_path_exports_record_themselves(fast_models):
    meta = read_meta(fast_models["both"])
    assert meta.inputs == ["frame", "pre_frame", "pre_hm"] and meta.outputs[:2] == ["scores", "classes"]
    assert meta.graph and meta.graph.source_size == (240, 320) and meta.graph.topk == 100
    session = ort.InferenceSession(str(fast_models["both"]), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(uint8)" and session.get_inputs()[0].shape == [1, 240, 320, 3]
    assert [o.shape for o in session.get_outputs()] == [[1, 100]] * 4 + [[1, 100, 2]] * 3
    ops = {n.op_type for n in onnx.load(str(fast_models["both"])).graph.node}
    assert {"GridSample", "TopK", "GatherElements", "MaxPool"} <= ops


@pytest.mark.slow
def test_fast_path_has_no_intermediate_uint8_tensor(fast_models):
    # TensorRT 8.6+ refuses a node producing UINT8 unless it is a graph output; 8.5 takes UINT8 only into a Cast.
    model = onnx.shape_inference.infer_shapes(onnx.load(str(fast_models["both"])))
    graph = model.graph
    uint8 = {v.name for v in [*graph.value_info, *graph.input] if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8}
    assert {v.name for v in graph.input if v.name in uint8} == {"frame", "pre_frame"}
    outputs = {v.name for v in graph.output}
    consumers = [n for n in graph.node if set(n.input) & uint8]
    assert [n.op_type for n in consumers] == ["Cast", "Cast"]
    assert all(onnx.helper.get_attribute_value(a) == onnx.TensorProto.FLOAT for n in consumers for a in n.attribute
               if a.name == "to")
    assert not [out for n in graph.node for out in n.output if out in uint8 and out not in outputs]


@pytest.mark.slow
def test_graph_decode_matches_host_decode(fast_models):
    rng = np.random.default_rng(4)
    feed = {"image": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_img": rng.standard_normal((1, 3, 128, 160), np.float32),
            "pre_hm": rng.random((1, 1, 128, 160), np.float32)}
    geometry = FrameGeometry.build(640, 480, 128, 160)
    heads = {k: v[0] for k, v in OnnxRuntimeBackend(fast_models["plain"], "cpu")(feed).items()}
    graph = {k: v[0] for k, v in OnnxRuntimeBackend(fast_models["dec"], "cpu")(feed).items()}
    for threshold in (0.3, 0.05):
        host = Decoder(80, 32, 40, k=100, threshold=threshold)(heads, geometry)
        ours = decode_topk(graph, geometry, threshold)
        assert len(host) == len(ours) > 0
        assert host.classes.tolist() == ours.classes.tolist()
        assert np.abs(host.boxes - ours.boxes).max() <= 1e-4 and np.abs(host.scores - ours.scores).max() <= 1e-6
        assert np.abs(host.tracking - ours.tracking).max() <= 1e-4


@pytest.mark.slow
def test_graph_decode_takes_any_batch(fast_models):
    """Triton batches requests into a dynamic-batch model: each row's top-K is that frame's alone."""
    rng = np.random.default_rng(5)
    feed = {"image": rng.standard_normal((3, 3, 128, 160), np.float32),
            "pre_img": rng.standard_normal((3, 3, 128, 160), np.float32),
            "pre_hm": rng.random((3, 1, 128, 160), np.float32)}
    backend = OnnxRuntimeBackend(fast_models["dec_any_batch"], "cpu")
    batched = backend(feed)
    for row in range(3):
        alone = backend({k: v[row : row + 1] for k, v in feed.items()})
        assert all(np.abs(batched[k][row] - alone[k][0]).max() <= 1e-5 for k in alone)


def tracks(path):
    return [json.loads(line)["results"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_run_with_both_fast_paths_gives_the_same_tracks(fast_models, tmp_path):
    video = make_demo_video(tmp_path / "v.mp4", frames=5, size=(320, 240))
    runs = {}
    for name in ("plain", "both"):
        out = tmp_path / f"{name}.jsonl"
        result = invoke("run", fast_models[name], "--source", video, "--save-json", out)
        assert result.exit_code == 0, result.output
        runs[name] = tracks(out)
    assert len(runs["plain"]) == len(runs["both"]) == 5
    for plain, fast in zip(runs["plain"], runs["both"], strict=True):
        assert [r["tracking_id"] for r in plain] == [r["tracking_id"] for r in fast]
        if plain:
            # Letterbox differences of < 1 grey level move boxes by hundredths of a pixel at most.
            assert np.abs(np.array([r["bbox"] for r in plain]) - [r["bbox"] for r in fast]).max() < 0.1


@pytest.mark.slow
def test_wrong_frame_size_is_a_clear_error(fast_models, tmp_path):
    video = make_demo_video(tmp_path / "big.mp4", frames=2, size=(640, 480))
    result = invoke("run", fast_models["pre"], "--source", video)
    assert result.exit_code == 2 and "pre-processes 320x240 frames in its graph; the source gives 640x480" in result.output


def test_export_option_errors(checkpoint_85, tmp_path):
    for flags, message in ((["--preprocess-in-graph"], "needs --source-size"),
                           (["--source-size", "320x240"], "only applies with --preprocess-in-graph"),
                           (["--preprocess-in-graph", "--source-size", "wide"], "expected WxH")):
        result = invoke("export", checkpoint_85, "-o", tmp_path / "x.onnx", *flags)
        assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_tensorrt_keeps_the_previous_raw_frame_on_the_device(monkeypatch, fast_models, tmp_path):
    sim.install(monkeypatch, "10.3.0")
    engine = tmp_path / "both.engine"
    build_engine(fast_models["both"], engine, BuildOptions())
    backend = TensorRTBackend(engine)
    state = __import__("sys").modules["cuda.bindings.runtime"].state
    frames = [np.ascontiguousarray(cv2.resize(sample_image(n), (320, 240)))[None] for n in ("chelsea", "coffee", "rocket")]
    pre_hm = np.zeros((1, 1, 128, 160), np.float32)
    reference = OnnxRuntimeBackend(fast_models["both"], "cpu")
    previous = frames[0]
    for t, frame in enumerate(frames):
        before = state.bytes_to_device
        got = backend({"frame": frame, "pre_frame": previous, "pre_hm": pre_hm})
        expected = reference({"frame": frame, "pre_frame": previous, "pre_hm": pre_hm})
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
        # 230 KB of uint8 frame per call instead of 2 x 245 KB of float tensors; the previous frame is reused.
        assert state.bytes_to_device - before == frame.nbytes * (2 if t == 0 else 1) + pre_hm.nbytes
        previous = frame


def test_peak_ties_are_judged_on_the_reference_heatmap():
    from ctrt.export.parity import undecided_peak

    hm = np.zeros((2, 5, 6), np.float32)
    hm[0, 2, 1:5] = [3.9539, 3.9527895, 3.952789, 3.95]  # a near-flat ridge: (2, 2) vs (2, 3) differ by 5e-7
    hm[1, 2, 2] = 1.0  # a clear peak
    assert undecided_peak(hm, np.array([0, 2, 3]))  # a shoulder: its larger neighbour wins by 5e-7
    assert not undecided_peak(hm, np.array([0, 2, 2]))  # clearly below its left neighbour (1.1e-3)
    assert not undecided_peak(hm, np.array([0, 2, 1])) and not undecided_peak(hm, np.array([1, 2, 2]))  # peaks
