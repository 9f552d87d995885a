"""TensorRT's ONNX parser rules (ctrt/trt_rules.py) on every graph ctrt exports, and on graphs made to break each."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import trt_simulation as sim
from ctrt import trt_rules
from ctrt.engines.builder import BuildOptions, build_engine
from ctrt.errors import CtrtError
from conftest import invoke, message_lines

VARIANTS = {
    "plain": [], "fp16": ["--fp16"], "batch 2": ["--batch", "2"], "dynamic batch": ["--dynamic-batch"],
    "pre-processing in graph": ["--preprocess-in-graph", "--source-size", "320x240"],
    "decode in graph": ["--decode-in-graph"],
    "both": ["--preprocess-in-graph", "--source-size", "320x240", "--decode-in-graph"],
    "hardnet-68": ["--arch", "hardnet_68"], "centernet detection": ["--arch", "centernet_hardnet_85"],
}


@pytest.mark.slow
@pytest.mark.parametrize("flags", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_export_variant_parses_on_every_line(tmp_path, flags):
    out = tmp_path / "m.onnx"
    result = invoke("export", "--random-init", "--input-size", "128x160", "--no-check", "-o", out, *flags)
    assert result.exit_code == 0, result.output  # export refuses a graph any targeted line would not parse
    assert trt_rules.check_file(out) == [] and "would not parse" not in result.output


def graph(nodes, inputs, outputs, initializers=(), opset=17):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def tensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def uint8_frames_transposed_first():
    """The fast path's first ops as exported before its fix: uint8 frames into a Transpose, then the Cast."""
    return graph([helper.make_node("Transpose", ["frame"], ["t"], perm=[0, 3, 1, 2], name="/Transpose"),
                  helper.make_node("Cast", ["t"], ["x"], to=TensorProto.FLOAT, name="/Cast")],
                 [tensor("frame", TensorProto.UINT8, [1, 240, 320, 3])], [tensor("x", TensorProto.FLOAT, None)])


def test_the_fast_path_exported_before_its_fix_is_refused_by_every_line():
    refusals = trt_rules.check(uint8_frames_transposed_first())
    assert {r.line for r in refusals} == set(trt_rules.LINES)
    assert all(r.node == "/Transpose" for r in refusals)
    assert {r.source for r in refusals if r.line != "8.5"} == {"8.6-GA, 10.1-GA ModelImporter.cpp"}
    assert "may only be cast to FP32 or FP16" in next(r.reason for r in refusals if r.line == "8.5")
    cast_first = graph([helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT, name="/Cast"),
                        helper.make_node("Transpose", ["f"], ["x"], perm=[0, 3, 1, 2], name="/Transpose")],
                       [tensor("frame", TensorProto.UINT8, [1, 240, 320, 3])], [tensor("x", TensorProto.FLOAT, None)])
    assert trt_rules.check(cast_first) == []


def x4(name="x"):
    return tensor(name, TensorProto.FLOAT, [1, 3, 8, 8])


BROKEN = {
    "slice axes computed": (graph(
        [helper.make_node("Shape", ["x"], ["axes_all"], name="shape"),
         helper.make_node("Slice", ["x", "starts", "ends", "axes_all"], ["y"], name="the_slice")],
        [x4()], [x4("y")], [numpy_helper.from_array(np.array([0]), "starts"),
                            numpy_helper.from_array(np.array([1]), "ends")]),
        "the_slice", "axes input axes_all must be an initializer", {"8.5", "8.6", "10", "11"}),
    "topk K computed on 8.5": (graph(
        [helper.make_node("Shape", ["x"], ["k4"], name="shape"),
         helper.make_node("Slice", ["k4", "s", "e", "a"], ["k"], name="pick"),
         helper.make_node("TopK", ["x", "k"], ["v", "i"], name="the_topk")],
        [x4()], [tensor("v", TensorProto.FLOAT, None), tensor("i", TensorProto.INT64, None)],
        [numpy_helper.from_array(np.array([3]), n) for n in ("s",)] + [numpy_helper.from_array(np.array([4]), "e"),
                                                                       numpy_helper.from_array(np.array([0]), "a")]),
        "the_topk", "K input k must be an initializer", {"8.5"}),
    "topk K too large": (graph(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="the_topk")], [x4()],
        [tensor("v", TensorProto.FLOAT, None), tensor("i", TensorProto.INT64, None)],
        [numpy_helper.from_array(np.array([5000]), "k")]), "the_topk", "above TensorRT's limit of 3840",
        {"8.5", "8.6", "10", "11"}),
    "topk unsorted": (graph(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], sorted=0, name="the_topk")], [x4()],
        [tensor("v", TensorProto.FLOAT, None), tensor("i", TensorProto.INT64, None)],
        [numpy_helper.from_array(np.array([2]), "k")]), "the_topk", "sorted must be 1", {"10", "11"}),
    "resize cubic": (graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic", name="the_resize")], [x4()],
        [tensor("y", TensorProto.FLOAT, None)], [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]),
        "the_resize", "mode cubic is not nearest or linear", {"8.5", "8.6", "10", "11"}),
    "resize antialias": (graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear", antialias=1, name="the_resize")],
        [x4()], [tensor("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], np.float32), "scales")], opset=18),
        "the_resize", "antialiasing is not supported", {"10", "11"}),
    "zero point not 0": (graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="the_q"),
         helper.make_node("DequantizeLinear", ["q", "s", "zero"], ["y"], name="the_dq")],
        [x4()], [x4("y")], [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                            numpy_helper.from_array(np.array(3, np.int8), "z"),
                            numpy_helper.from_array(np.array(0, np.int8), "zero")]),
        "the_q", "zero point must be 0", {"8.5", "8.6", "10", "11"}),
    "pool dilations": (graph(
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], dilations=[2, 2], name="the_pool")],
        [x4()], [tensor("y", TensorProto.FLOAT, None)]), "the_pool", "dilations must be empty or all ones",
        {"10", "11"}),
    "pool indices": (graph(
        [helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[3, 3], name="the_pool")],
        [x4()], [tensor("y", TensorProto.FLOAT, None), tensor("idx", TensorProto.INT64, None)]),
        "the_pool", "Indices output is unsupported", {"8.5", "8.6", "10", "11"}),
    "gridsample 5-D": (graph(
        [helper.make_node("GridSample", ["v", "g"], ["y"], name="the_sample")],
        [tensor("v", TensorProto.FLOAT, [1, 1, 4, 4, 4]), tensor("g", TensorProto.FLOAT, [1, 4, 4, 4, 3])],
        [tensor("y", TensorProto.FLOAT, None)], opset=20), "the_sample", "GridSample takes 4-D input only",
        {"10", "11"}),
    "op without importer on 8.x": (graph(
        [helper.make_node("Gelu", ["x"], ["y"], name="the_gelu")], [x4()], [x4("y")], opset=20),
        "the_gelu", "no importer for this op", {"8.5", "8.6"}),
    "int64 beyond int32 before 10": (graph(
        [helper.make_node("Add", ["n", "big"], ["m"], name="the_add")], [tensor("n", TensorProto.INT64, [1])],
        [tensor("m", TensorProto.INT64, [1])], [numpy_helper.from_array(np.array([2**40]), "big")]),
        "the_add", "holds 1099511627776, which the parser clamps to INT32", {"8.5", "8.6"}),
    "opset 18 on 8.x": (graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x4()], [x4("y")], opset=18),
                        "(graph)", "opset 18 is outside 1 to 17", {"8.5", "8.6"}),
}


@pytest.mark.parametrize("model, node, reason, lines", BROKEN.values(), ids=BROKEN.keys())
def test_each_rule_refuses_the_graph_that_breaks_it_naming_the_node(model, node, reason, lines):
    refusals = [r for r in trt_rules.check(model) if reason in r.reason]
    assert {r.line for r in refusals} == lines
    assert {r.node for r in refusals} == {node} and all(r.source for r in refusals)


def test_slice_ends_past_int32_are_not_refused():
    """torch writes INT64_MAX as "to the end"; the 8.x parser clamps it, and the slice means the same."""
    model = graph([helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="to_the_end")], [x4()],
                  [x4("y")], [numpy_helper.from_array(np.array([1]), "starts"),
                              numpy_helper.from_array(np.array([2**63 - 1]), "ends"),
                              numpy_helper.from_array(np.array([3]), "axes")])
    assert trt_rules.check(model) == []


def test_versions_map_to_lines_and_user_targets_are_checked():
    assert [trt_rules.trt_line(v) for v in ("8.5.2.2", "8.6.1", "10.3.0", "11.4.1")] == ["8.5", "8.6", "10", "11"]
    assert trt_rules.parse_lines("8.6, 10") == ("8.6", "10") and trt_rules.parse_lines(None) == trt_rules.LINES
    with pytest.raises(CtrtError, match="trt '9': choose from 8.5, 8.6, 10, 11"):
        trt_rules.parse_lines("9")


@pytest.mark.slow
def test_export_errors_for_targeted_lines_and_warns_for_the_others(tmp_path):
    out = tmp_path / "m.onnx"
    refused = invoke("export", "--random-init", "--input-size", "128x160", "--no-check", "--opset", "18", "-o", out)
    assert refused.exit_code == 2 and len(message_lines(refused.output)) == 1 and not out.exists()
    assert "TensorRT 8.5, 8.6 would not parse this graph: node (graph) (opset): opset 18 is outside 1 to 17" \
        in refused.output
    taken = invoke("export", "--random-init", "--input-size", "128x160", "--no-check", "--opset", "18", "--trt", "10,11",
                   "-o", out)
    assert taken.exit_code == 0 and out.exists(), taken.output
    assert taken.output.count("would not parse it") == 2  # one warning line for each line not targeted


@pytest.mark.parametrize("version, refused", [("8.5.2", True), ("10.3.0", False)])
def test_the_simulated_parser_refuses_what_its_version_refuses(monkeypatch, tmp_path, version, refused):
    sim.install(monkeypatch, version)
    gelu = tmp_path / "gelu.onnx"
    onnx.save(BROKEN["op without importer on 8.x"][0], gelu)
    for path, expected in ((gelu, refused), (tmp_path / "uint8.onnx", True)):
        if path.name == "uint8.onnx":
            onnx.save(uint8_frames_transposed_first(), path)
        trt = __import__("tensorrt")
        network = trt.Builder(trt.Logger()).create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
                                                           if trt.MAJOR < 10 else 0)
        parser = trt.OnnxParser(network, trt.Logger())
        assert parser.parse_from_file(str(path)) is not expected
        if expected:
            # the node is named, even where a graph-level refusal (the opset) comes first
            assert any(parser.get_error(i).node() >= 0 for i in range(parser.num_errors))


def test_build_refuses_with_our_rule_before_the_parser(monkeypatch, tmp_path, onnx_85):
    sim.install(monkeypatch, "10.3.0")
    model = tmp_path / "uint8.onnx"
    onnx.save(uint8_frames_transposed_first(), model)
    shutil.copyfile(f"{onnx_85}.json", f"{model}.json")  # a sidecar, as an export of that graph would have
    with pytest.raises(CtrtError, match=r"TensorRT 10.3.0's ONNX parser would refuse .*node /Transpose"):
        build_engine(model, tmp_path / "m.engine", BuildOptions())
    assert not (tmp_path / "m.engine").exists()
