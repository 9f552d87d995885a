"""INT8: calibration data from a COCO-format set of real photos, the TensorRT calibrator and its cache (through the
simulation), Q/DQ quantization on ONNX Runtime, and the accuracy report."""

import json

import cv2
import numpy as np
import pytest

import trt_simulation as sim
from ctrt import trt_rules
from ctrt.artifacts import CalibrationRecord, read_meta
from ctrt.calibration.accuracy import sqnr_db
from ctrt.calibration.cache import cache_path
from ctrt.calibration.dataset import CalibrationInputs, jitter, load_coco_boxes, select_images
from ctrt.calibration.int8_rewrites import int8_friendly
from ctrt.calibration.workflow import fp32_detector
from ctrt.errors import CtrtError
from ctrt.model.config import MEAN_BGR, STD_BGR
from ctrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend, x86_without_vnni
from ctrt.runtime.prehm import PreHeatmapRenderer
from ctrt.runtime.preprocess import Preprocessor, normalisation_table
from ctrt.runtime.backends.registry import LoadOptions, open_backend
from conftest import invoke, message_lines

INPUTS = ["image", "pre_img", "pre_hm"]


def test_calibration_tensors_are_the_runtime_preprocessing_bit_for_bit(coco_dir):
    images, annotations = coco_dir
    boxes = load_coco_boxes(annotations)
    inputs = CalibrationInputs(INPUTS, (128, 160), MEAN_BGR, STD_BGR, boxes, seed=3)
    path = images / "000000000002.jpg"  # chelsea: one annotated cat
    sample = inputs.sample(path, 5)
    frame = cv2.imread(str(path))
    expected = np.empty((3, 128, 160), np.float32)
    Preprocessor(128, 160)(frame, expected)
    assert np.array_equal(sample["image"], expected)

    transform, moved = jitter(frame.shape[:2], (128, 160), boxes[path.name], np.random.default_rng([3, 5]))
    warped = cv2.warpAffine(frame, transform, (160, 128), flags=cv2.INTER_LINEAR)
    table = normalisation_table()
    assert np.array_equal(sample["pre_img"], np.stack([table[c][warped[:, :, c]] for c in range(3)]))
    assert not np.array_equal(sample["pre_img"], sample["image"])  # shifted and scaled like CenterTrack's training
    # pre_hm: a peak of 1 at the jittered box's centre, mapped through the same transform as pre_img.
    corners = np.hstack([moved.reshape(-1, 2), np.ones((2, 1))]) @ transform.T
    corners[:, 0] = corners[:, 0].clip(0, 159)
    corners[:, 1] = corners[:, 1].clip(0, 127)
    cx, cy = corners.mean(axis=0).astype(np.float32).astype(int)
    assert sample["pre_hm"][0, cy, cx] == 1.0 and np.count_nonzero(sample["pre_hm"] == 1.0) == 1
    assert not np.allclose(moved, boxes[path.name])


def test_without_annotations_pre_hm_comes_from_the_fp32_model(onnx_85, coco_dir):
    images, _ = coco_dir
    backend = OnnxRuntimeBackend(onnx_85, "cpu")
    detector = fp32_detector(backend)
    seen = {}

    def recording(tensors, frame):
        seen["boxes"] = detector(tensors, frame)
        return seen["boxes"]

    inputs = CalibrationInputs(INPUTS, (128, 160), MEAN_BGR, STD_BGR, None, recording, seed=0)
    path = images / "000000000001.jpg"
    sample = inputs.sample(path, 0)
    frame = cv2.imread(str(path))
    transform, _ = jitter(frame.shape[:2], (128, 160), np.zeros((0, 4), np.float32), np.random.default_rng([0, 0]))
    expected = np.zeros((128, 160), np.float32)
    PreHeatmapRenderer(128, 160).render(seen["boxes"], transform, expected)
    assert len(seen["boxes"]) > 0 and np.array_equal(sample["pre_hm"][0], expected)


def test_image_selection_is_seeded_skips_unreadable_and_checks_the_minimum(coco_dir):
    images, _ = coco_dir
    first = select_images(images, 6, 3, seed=1, minimum=1)
    again = select_images(images, 6, 3, seed=1, minimum=1)
    other = select_images(images, 6, 3, seed=2, minimum=1)
    assert first.calibration == again.calibration and first.checksum == again.checksum
    assert first.checksum != other.checksum and not set(first.calibration) & set(first.held_out)
    everything = select_images(images, 20, 0, seed=0, minimum=1)
    assert len(everything.calibration) == 11 and [p.name for p in everything.unreadable] == ["000000000099.jpg"]
    with pytest.raises(CtrtError, match="has 11 usable images .1 unreadable.; calibration needs at least 12"):
        select_images(images, 20, 0, seed=0, minimum=12)


def test_cache_key_changes_with_every_component(tmp_path):
    base = CalibrationRecord("onnx", "images", (1, 3, 128, 160), "10.3.0", "entropy", 6)
    variants = [CalibrationRecord("onnx2", "images", (1, 3, 128, 160), "10.3.0", "entropy", 6),
                CalibrationRecord("onnx", "images2", (1, 3, 128, 160), "10.3.0", "entropy", 6),
                CalibrationRecord("onnx", "images", (1, 3, 256, 160), "10.3.0", "entropy", 6),
                CalibrationRecord("onnx", "images", (1, 3, 128, 160), "10.3.1", "entropy", 6),
                CalibrationRecord("onnx", "images", (1, 3, 128, 160), "10.3.0", "minmax", 6)]
    paths = {cache_path(base, tmp_path, "m")} | {cache_path(v, tmp_path, "m") for v in variants}
    assert len(paths) == 6


@pytest.fixture(scope="module")
def quantized(onnx_85, coco_dir, tmp_path_factory):
    images, annotations = coco_dir
    out = tmp_path_factory.mktemp("int8") / "model_int8.onnx"
    result = invoke("quantize", onnx_85, "--calib-images", images, "--calib-annotations", annotations,
                    "--calib-count", 6, "--held-out", 3, "-o", out)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_quantize_writes_qdq_model_that_runs_and_a_computed_report(quantized, onnx_85, coco_dir):
    import onnx

    out, output = quantized
    assert "1 unreadable skipped" in output and "warning: only 6 calibration images" in output
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 100
    zero_points = [onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("zero_point")]
    assert zero_points and all(not z.any() for z in zero_points)  # symmetric, as TensorRT requires
    assert trt_rules.check_file(out) == []  # every TensorRT line's parser takes it
    hm_convs = [n for n in model.graph.node if n.name in ("/model/hm/hm.0/Conv", "/model/hm/hm.2/Conv")]
    produced_by_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    # The heatmap head keeps float weights (its input, shared with the other heads, is quantized for them).
    assert len(hm_convs) == 2 and not any(n.input[1] in produced_by_dq for n in hm_convs)
    reg_conv = next(n for n in model.graph.node if n.name == "/model/reg/reg.0/Conv")
    assert reg_conv.input[1] in produced_by_dq
    meta = read_meta(out)
    assert meta.precision == "int8" and meta.quantization
    assert meta.quantization.calibration_images == 6 and meta.quantization.target == "tensorrt"
    # The context split leaves only the quotient halves of the context-reading convs in float.
    assert "rewrote 15 context-reading convs and 4 9x9 pools" in output
    context_convs = [n for n in model.graph.node if n.op_type == "Conv" and n.name.endswith("_context")]
    assert len(context_convs) == 15 and not any(n.input[1] in produced_by_dq for n in context_convs)
    split_main = next(n for n in model.graph.node if n.name == "/model/denseBlocksUp.2/layers.0/conv/Conv")
    assert split_main.input[1] in produced_by_dq

    report = json.loads(out.with_name(out.name + ".accuracy.json").read_text())
    assert report["images"] == 3
    # Recompute one number independently: the heatmap SQNR over the held-out images.
    images, annotations = coco_dir
    # A TensorRT-target model is judged by its Q/DQ arithmetic (fusions off), not by x86 INT8 kernels.
    fp32, int8 = OnnxRuntimeBackend(onnx_85, "cpu"), OnnxRuntimeBackend(out, "cpu", optimize=False)
    inputs = CalibrationInputs(INPUTS, (128, 160), MEAN_BGR, STD_BGR, load_coco_boxes(annotations), seed=0)
    refs, gots = [], []
    for index, name in enumerate(report["held_out"]):
        feed = {k: v[None] for k, v in inputs.sample(images / name, index).items()}
        refs.append(fp32(feed)["hm"].copy())
        gots.append(int8(feed)["hm"].copy())
    hm = next(h for h in report["heads"] if h["head"] == "hm")
    assert hm["sqnr_db"] == pytest.approx(sqnr_db(np.concatenate(refs), np.concatenate(gots)), rel=1e-6)
    assert 0 <= report["matched"] <= report["fp32_detections"]
    missed = report["missed_scores"]
    assert len(missed) == report["fp32_detections"] - report["matched"] and all(s >= 0.3 for s in missed)


@pytest.mark.slow
def test_quantized_model_runs_through_ctrt_run(quantized, tmp_path):
    out, _ = quantized
    from ctrt.demo import make_demo_video

    video = make_demo_video(tmp_path / "v.mp4", frames=3, size=(320, 240))
    result = invoke("run", out, "--source", video, "--save-json", tmp_path / "t.jsonl")
    assert result.exit_code == 0 and len((tmp_path / "t.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_tensorrt_int8_calibrates_caches_and_reuses(monkeypatch, onnx_85, coco_dir, tmp_path):
    monkeypatch.chdir(tmp_path)
    sim.install(monkeypatch, "10.3.0")
    images, annotations = coco_dir
    args = ["build", onnx_85, "--int8", "--calib-images", images, "--calib-annotations", annotations,
            "--calib-count", 4, "--held-out", 2]
    first = invoke(*args, "-o", "a.engine")
    assert first.exit_code == 0, first.output
    header = sim_header(tmp_path / "a.engine")
    assert header["int8"] and header["fp16"] and header["calibration"].startswith("TRT-1030-ENTROPY_CALIBRATION_2")
    assert {"/model/hm/hm.0/Conv", "/model/hm/hm.2/Conv"} <= set(header["fp32_layers"]) and len(header["fp32_layers"]) > 3
    caches = list((tmp_path / "calibration").glob("*.cache"))
    assert len(caches) == 1 and "INT8 engine vs FP32" in first.output and "held-out" in first.output
    assert (tmp_path / "a.engine.accuracy.json").is_file()

    second = invoke(*args, "-o", "b.engine")
    assert "reusing calibration/" in second.output and sim_header(tmp_path / "b.engine")["calibration"] == \
        header["calibration"]
    assert invoke(*args[:-4], "--calib-count", 5, "--held-out", 2, "-o", "c.engine").exit_code == 0
    assert invoke(*args, "--calib-algo", "minmax", "-o", "d.engine").exit_code == 0
    assert len(list((tmp_path / "calibration").glob("*.cache"))) == 3  # another image set, another algorithm
    assert sim_header(tmp_path / "d.engine")["calibration"].startswith("TRT-1030-MINMAX_CALIBRATION")

    explicit = invoke("build", onnx_85, "--int8", "--calib-cache", caches[0], "-o", "e.engine")
    assert explicit.exit_code == 0, explicit.output
    assert "as given (no images needed)" in explicit.output
    assert sim_header(tmp_path / "e.engine")["calibration"] == header["calibration"]


def sim_header(engine):
    data = engine.read_bytes()
    return json.loads(data[4 : 4 + int.from_bytes(data[:4], "little")])


def test_quantize_bad_inputs_fail_with_one_line(onnx_85, coco_dir, tmp_path):
    images, _ = coco_dir
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    for args, message in (([tmp_path / "missing.onnx", "--calib-images", images], "model not found"),
                          ([junk, "--calib-images", images], "is not a readable ONNX file"),
                          ([onnx_85, "--calib-images", tmp_path / "none"], "calibration image folder not found"),
                          ([onnx_85, "--calib-images", images, "--method", "kl"], "--method 'kl'")):
        result = invoke("quantize", *args, "-o", tmp_path / "q.onnx")
        assert result.exit_code == 2 and message in result.output and len(message_lines(result.output)) == 1
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.slow
def test_tensorrt11_needs_qdq_and_builds_it(monkeypatch, quantized, onnx_85, coco_dir, tmp_path):
    out, _ = quantized
    sim.install(monkeypatch, "11.4.1")
    images, _ = coco_dir
    refused = invoke("build", onnx_85, "--int8", "--calib-images", images, "-o", tmp_path / "x.engine")
    assert refused.exit_code == 2 and "make a Q/DQ model with ctrt quantize" in refused.output
    built = invoke("build", out, "-o", tmp_path / "q.engine")
    assert built.exit_code == 0, built.output
    assert read_meta(tmp_path / "q.engine").precision == "int8" and not sim_header(tmp_path / "q.engine")["int8"]
    sim.install(monkeypatch, "10.3.0")
    assert invoke("build", out, "-o", tmp_path / "q10.engine").exit_code == 0
    assert sim_header(tmp_path / "q10.engine")["int8"]  # weakly typed TensorRT 10 needs the flag for Q/DQ


@pytest.mark.slow
def test_int8_rewrites_are_exact_and_leave_only_quotient_channels_float(onnx_85):
    import onnx

    from ctrt.calibration.quantize import float_nodes
    from ctrt.export.parity import real_feed

    original = onnx.load(str(onnx_85))
    rewritten, done = int8_friendly(original)
    assert (done.split_convs, done.separable_pools) == (15, 4)
    pools = [n for n in rewritten.graph.node if n.op_type == "AveragePool"]
    kernels = sorted(tuple(a.ints) for n in pools for a in n.attribute if a.name == "kernel_shape")
    assert kernels.count((9, 1)) == 4 and kernels.count((1, 9)) == 4 and (9, 9) not in kernels
    feed = real_feed(INPUTS, 1, 128, 160)
    before = OnnxRuntimeBackend(onnx_85, "cpu")(feed)
    path = onnx_85.with_name("rewritten.onnx")
    onnx.save(rewritten, str(path))
    after = OnnxRuntimeBackend(path, "cpu", meta=read_meta(onnx_85))(feed)
    for head, value in before.items():
        assert np.abs(after[head] - value).max() <= 1e-4 * max(1.0, np.abs(value).max()), head
    # Float for INT8 now: the context chain, its quotient convs, the heatmap head; not the big halves of the convs.
    kept = float_nodes(rewritten, "tensorrt")
    assert {n.name for n in rewritten.graph.node if n.name.endswith("_context")} <= kept
    assert "/model/denseBlocksUp.2/layers.0/conv/Conv" not in kept
    assert "/model/denseBlocksUp.2/layers.0/conv/Conv" in float_nodes(original, "tensorrt")
    assert "/model/hm/hm.0/Conv" in kept and "/model/hm/hm.0/Conv" not in float_nodes(rewritten, "cpu")


@pytest.fixture(scope="module")
def quantized_cpu(onnx_85, coco_dir, tmp_path_factory):
    images, annotations = coco_dir
    out = tmp_path_factory.mktemp("int8cpu") / "model_cpu.onnx"
    result = invoke("quantize", onnx_85, "--target", "cpu", "--calib-images", images, "--calib-annotations",
                    annotations, "--calib-count", 6, "--held-out", 3, "-o", out)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow
def test_cpu_target_uses_uint8_activations_7bit_weights_and_tensorrt_refuses_it(quantized_cpu, monkeypatch, tmp_path):
    import onnx

    out, output = quantized_cpu
    assert "ctrt build" not in output  # the next steps do not offer what would be refused
    model = onnx.load(str(out))
    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    activation_zero_points = [v for k, v in arrays.items() if k.endswith("zero_point") and v.dtype == np.uint8]
    assert activation_zero_points and any(v.any() for v in activation_zero_points)  # asymmetric uint8
    weights = [arrays[n.input[0]] for n in model.graph.node
               if n.op_type == "DequantizeLinear" and arrays.get(n.input[0], np.zeros(0)).dtype == np.int8]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64  # 7-bit range
    produced_by_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = {n.name: n for n in model.graph.node}
    assert convs["/model/hm/hm.0/Conv"].input[1] in produced_by_dq  # the heatmap trunk runs INT8 on CPU...
    assert convs["/model/hm/hm.2/Conv"].input[1] not in produced_by_dq  # ...its logit layer stays FP32
    assert read_meta(out).quantization.target == "cpu"
    refusals = trt_rules.check_file(out)
    assert {r.line for r in refusals if "zero point must be 0" in r.reason} == set(trt_rules.LINES)
    sim.install(monkeypatch, "10.3.0")
    refused = invoke("build", out, "-o", tmp_path / "cpu.engine")
    assert refused.exit_code == 2 and "--target tensorrt" in refused.output
    assert len(message_lines(refused.output)) == 1 and not (tmp_path / "cpu.engine").exists()


@pytest.mark.slow
def test_tensorrt_target_on_a_cpu_without_vnni_warns_once(quantized, quantized_cpu, monkeypatch, tmp_path):
    from ctrt.demo import make_demo_video
    import ctrt.runtime.backends.onnxruntime_backend as runner

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse avx2 fma\n")
    assert x86_without_vnni(cpuinfo) == (runner.platform.machine().lower() in ("x86_64", "amd64"))
    cpuinfo.write_text("flags\t\t: fpu sse avx2 avx512_vnni\n")
    assert not x86_without_vnni(cpuinfo)
    monkeypatch.setattr(runner, "x86_without_vnni", lambda: True)
    assert open_backend(quantized[0], LoadOptions("cpu")).notes
    assert not open_backend(quantized_cpu[0], LoadOptions("cpu")).notes
    video = make_demo_video(tmp_path / "v.mp4", frames=2, size=(320, 240))
    result = invoke("run", quantized[0], "--source", video)
    assert result.exit_code == 0 and result.output.count("--target cpu") == 1
    monkeypatch.setattr(runner, "x86_without_vnni", lambda: False)
    assert "--target cpu" not in invoke("run", quantized[0], "--source", video).output


def test_quantize_refuses_a_non_fp32_model(quantized, coco_dir, tmp_path):
    images, _ = coco_dir
    result = invoke("quantize", quantized[0], "--calib-images", images, "-o", tmp_path / "again.onnx")
    assert result.exit_code == 2 and "is an INT8 model; quantize the FP32 export" in result.output
    bad = invoke("quantize", quantized[0], "--calib-images", images, "--target", "gpu", "-o", tmp_path / "x.onnx")
    assert bad.exit_code == 2 and "--target 'gpu'" in bad.output


def test_minmax_ranges_cover_every_calibration_image(quantized, onnx_85, coco_dir):
    """The input's INT8 scale is max |image| over all calibration images / 127 (symmetric): no image is dropped."""
    import onnx

    out, _ = quantized
    images, annotations = coco_dir
    meta = read_meta(out)
    selection = select_images(images, 6, 3, 0, minimum=1)
    inputs = CalibrationInputs(INPUTS, (128, 160), MEAN_BGR, STD_BGR, load_coco_boxes(annotations), seed=0)
    peaks = [float(np.abs(feed["image"]).max()) for feed in inputs.batches(selection.calibration, 1)]
    model = onnx.load(str(out))
    quantize_image = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "image")
    scale = next(onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name == quantize_image.input[1])
    assert meta.quantization.calibration_images == len(peaks) == 6
    assert float(scale) * 127 == pytest.approx(max(peaks), rel=1e-6)
    assert min(peaks) < max(peaks)  # the images differ, so a dropped image could change the scale
