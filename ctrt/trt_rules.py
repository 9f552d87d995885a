"""Whether TensorRT's ONNX parser takes a graph, per TensorRT line, decided without TensorRT.

The rules are facts of onnx/onnx-tensorrt, each named with the release branch and file it comes from: the ops that
have an importer and the opset range per branch are data (``assets/trt_parser.json``, extracted by
``tools/onnx_tensorrt_facts.py``); the rest are small checks below. TensorRT 10 is read from the 10.1-GA branch; no
parser source of TensorRT 11 was available to read, so 11 is checked with the 10.1-GA rules (the 10.x parser rules
kept in 11 as far as its operator documentation goes) and says so in every refusal.

    >>> refusals = check(onnx.load("model.onnx"))
    >>> [r.line for r in refusals], [r.text() for r in refusals]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import CtrtError

LINES = ("8.5", "8.6", "10", "11")
FACTS_FOR = {"8.5": "8.5", "8.6": "8.6", "10": "10", "11": "10"}  # the branch whose facts stand for a line
TOPK_MAX_K = 3840  # ITopKLayer's largest K (10.1-GA docs/operators.md: TopK "K input must be less than 3840")
RESIZE_COORDINATES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}

_UINT8, _FLOAT, _FLOAT16, _INT64 = 2, 1, 10, 7  # onnx.TensorProto element types


@dataclass(frozen=True)
class Refusal:
    """One node a TensorRT line's parser refuses, why, and where that rule is written."""

    line: str
    node: str
    op: str
    reason: str
    source: str

    def text(self) -> str:
        return f"node {self.node} ({self.op}): {self.reason} [{self.source}]"


@cache
def _facts() -> dict[str, Any]:
    facts: dict[str, Any] = json.loads((Path(__file__).parent / "assets" / "trt_parser.json").read_text())
    return facts


def trt_line(version: str) -> str:
    """The line of a TensorRT version: '8.5.2.2' -> '8.5', '10.3.0' -> '10', '11.1' -> '11'."""
    parts = version.split(".")
    line = ".".join(parts[:2]) if parts[0] == "8" else parts[0]
    if line not in LINES:
        raise CtrtError(f"TensorRT {version}: ctrt supports TensorRT {', '.join(LINES)}")
    return line


def parse_lines(text: str | None) -> tuple[str, ...]:
    """``trt`` as a user gives it: '8.5', '8.6,10', or None for every supported line."""
    if not text:
        return LINES
    lines = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [line for line in lines if line not in LINES]
    if unknown or not lines:
        raise CtrtError(f"trt {text!r}: choose from {', '.join(LINES)} (comma-separated)", option="trt")
    return lines


class _Graph:
    """What the rules need to know of a graph: element types, constant tensors, graph outputs, opset."""

    def __init__(self, model: Any) -> None:
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
        graph = inferred.graph
        self.nodes = list(graph.node)
        values = [*graph.input, *graph.value_info, *graph.output]
        self.types = {v.name: v.type.tensor_type.elem_type for v in values}
        self.ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")}
        self.initializers = {init.name: init for init in graph.initializer}
        self.constants = {**self.initializers,
                          **{out: next((a.t for a in n.attribute if a.name == "value"), None)
                             for n in graph.node if n.op_type == "Constant" for out in n.output}}
        self.outputs = {v.name for v in graph.output}
        self.inputs = {v.name for v in graph.input if v.name not in self.initializers}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def constant(self, name: str) -> Any:
        """The tensor of an initializer or a Constant node's output, else None."""
        return self.constants.get(name)


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _values(tensor: Any) -> list[float]:
    from onnx import numpy_helper

    return [float(v) for v in numpy_helper.to_array(tensor).ravel()]


Rule = Callable[[_Graph, Any], Iterator[str]]
DOCS = "docs/operators.md"


def _uint8_intermediate(graph: _Graph, node: Any) -> Iterator[str]:
    for out in node.output:
        if graph.types.get(out) == _UINT8 and out not in graph.outputs:
            yield f"its output {out} is UINT8, which TensorRT takes only as a network input or output"


def _uint8_into_cast(graph: _Graph, node: Any) -> Iterator[str]:
    for name in node.input:
        if graph.types.get(name) != _UINT8:
            continue
        if node.op_type != "Cast":
            yield f"takes the UINT8 tensor {name}; UINT8 may only be cast to FP32 or FP16"
        elif _attr(node, "to", 0) not in (_FLOAT, _FLOAT16):
            yield f"casts the UINT8 tensor {name} to a type other than FP32 or FP16"


def _constant_input(op: str, index: int, what: str) -> Rule:
    def rule(graph: _Graph, node: Any) -> Iterator[str]:
        if node.op_type == op and len(node.input) > index and node.input[index]:
            if graph.constant(node.input[index]) is None:
                yield f"its {what} input {node.input[index]} must be an initializer or a constant"
    return rule


def _topk_k(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type != "TopK" or len(node.input) < 2:
        return
    k = graph.constant(node.input[1])
    if k is not None and max(_values(k), default=0) > TOPK_MAX_K:
        yield f"K {int(max(_values(k)))} is above TensorRT's limit of {TOPK_MAX_K}"


def _topk_sorted(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type == "TopK" and _attr(node, "sorted", 1) != 1:
        yield "sorted must be 1"


def _resize(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type != "Resize":
        return
    coordinates = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if coordinates not in RESIZE_COORDINATES:
        yield f"coordinate_transformation_mode {coordinates} is not one of {', '.join(sorted(RESIZE_COORDINATES))}"
    if _attr(node, "mode", "nearest") not in ("nearest", "linear"):
        yield f"mode {_attr(node, 'mode', 'nearest')} is not nearest or linear"
    if _attr(node, "nearest_mode", "round_prefer_floor") not in RESIZE_NEAREST:
        yield f"nearest_mode {_attr(node, 'nearest_mode', '')} is not one of {', '.join(sorted(RESIZE_NEAREST))}"


def _resize_antialias(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type == "Resize" and _attr(node, "antialias", 0):
        yield "antialiasing is not supported"
    if node.op_type == "Resize" and _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch":
        yield "keep_aspect_ratio_policy must be stretch"


def _gridsample_rank(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type == "GridSample" and node.input:
        rank = graph.ranks.get(node.input[0])
        if rank is not None and rank != 4:
            yield f"its input is {rank}-D; GridSample takes 4-D input only"


def _zero_points(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 and node.input[2]:
        zero = graph.constant(node.input[2])
        if zero is None:
            yield "its zero point must be a constant"
        elif any(_values(zero)):
            yield "its zero point must be 0 (symmetric quantization)"


def _pool_dilations(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type in ("MaxPool", "AveragePool") and any(d != 1 for d in _attr(node, "dilations", [])):
        yield "dilations must be empty or all ones"


def _pool_indices(graph: _Graph, node: Any) -> Iterator[str]:
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        yield "its Indices output is unsupported"


def _int64_clamped(graph: _Graph, node: Any) -> Iterator[str]:
    """Before TensorRT 10 INT64 is not a TensorRT type: the parser casts INT64 constants to INT32 and clamps what
    does not fit. Slice starts and ends are exempt: the slice clamps them to the dimension anyway."""
    for index, name in enumerate(node.input):
        tensor = graph.constant(name) if name else None
        if tensor is None or tensor.data_type != _INT64 or (node.op_type == "Slice" and index in (1, 2)):
            continue
        outside = [v for v in _values(tensor) if not -2**31 <= v < 2**31]
        if outside:
            yield f"its INT64 constant {name} holds {int(outside[0])}, which the parser clamps to INT32"


_ALL, _V8, _V86_UP, _V10_UP = LINES, ("8.5", "8.6"), ("8.6", "10", "11"), ("10", "11")
# (rule, the lines it applies to, its source: branch and file)
RULES: list[tuple[Rule, tuple[str, ...], str]] = [
    (_uint8_intermediate, _V86_UP, "8.6-GA, 10.1-GA ModelImporter.cpp"),
    (_uint8_into_cast, ("8.5",), "8.5-GA builtin_op_importers.cpp: Cast and notInvalidType"),
    (_constant_input("Slice", 3, "axes"), _ALL, f"8.5-GA, 8.6-GA, 10.1-GA {DOCS}: Slice"),
    (_constant_input("Unsqueeze", 1, "axes"), _ALL, f"8.5-GA, 8.6-GA, 10.1-GA {DOCS}: Unsqueeze"),
    (_constant_input("TopK", 1, "K"), ("8.5",), f"8.5-GA {DOCS}: TopK"),
    (_constant_input("ReduceMean", 1, "axes"), _V10_UP, f"10.1-GA {DOCS}: ReduceMean"),
    (_constant_input("ReduceSum", 1, "axes"), _V10_UP, f"10.1-GA {DOCS}: ReduceSum"),
    (_constant_input("Pad", 3, "axes"), _V10_UP, f"10.1-GA {DOCS}: Pad"),
    (_topk_k, _ALL, f"10.1-GA {DOCS}: TopK"),
    (_topk_sorted, _V10_UP, f"10.1-GA {DOCS}: TopK"),
    (_resize, _ALL, f"8.5-GA, 8.6-GA, 10.1-GA {DOCS}: Resize"),
    (_resize_antialias, _V10_UP, f"10.1-GA {DOCS}: Resize"),
    (_gridsample_rank, _V10_UP, f"10.1-GA {DOCS}: GridSample"),
    (_zero_points, _ALL, f"8.5-GA, 8.6-GA, 10.1-GA {DOCS}: QuantizeLinear, DequantizeLinear"),
    (_pool_dilations, _V10_UP, f"10.1-GA {DOCS}: MaxPool, AveragePool"),
    (_pool_indices, _ALL, f"8.5-GA, 8.6-GA, 10.1-GA {DOCS}: MaxPool"),
    (_int64_clamped, _V8, "8.5-GA, 8.6-GA onnx2trt_utils.cpp: convertINT64"),
]


def parser_branch(line: str) -> str:
    """The onnx-tensorrt branch whose rules stand for ``line``, as refusals and ``ctrt doctor`` name it."""
    return _facts()[FACTS_FOR[line]]["branch"] + (" (TensorRT 11 read as 10.1-GA)" if line == "11" else "")


def check(model: Any, lines: Iterable[str] = LINES) -> list[Refusal]:
    """Every refusal of ``model`` (an ``onnx.ModelProto``) by the parsers of ``lines``, in node order."""
    graph = _Graph(model)
    refusals: list[Refusal] = []
    for line in lines:
        facts = _facts()[FACTS_FOR[line]]
        branch = parser_branch(line)
        low, high = facts["opsets"]
        if not low <= graph.opset <= high:
            refusals.append(Refusal(line, "(graph)", "opset", f"opset {graph.opset} is outside {low} to {high}",
                                    f"{branch} {DOCS}"))
        known = set(facts["ops"])
        for index, node in enumerate(graph.nodes):
            name = node.name or f"#{index}"
            if node.domain not in ("", "ai.onnx"):
                continue  # plugins and custom domains: the parser's plugin path, beyond these rules
            if node.op_type not in known:
                refusals.append(Refusal(line, name, node.op_type, "no importer for this op",
                                        f"{branch} op importers"))
                continue
            for rule, applies, source in RULES:
                if line in applies:
                    refusals.extend(Refusal(line, name, node.op_type, reason, source) for reason in rule(graph, node))
    return refusals


def check_file(path: Path, lines: Iterable[str] = LINES) -> list[Refusal]:
    """``check`` of an ONNX file (its external data loaded for the zero points and K)."""
    import onnx

    return check(onnx.load(str(path)), lines)
