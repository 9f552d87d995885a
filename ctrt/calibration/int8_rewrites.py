"""Graph rewrites that let more of HarDNetSeg run in INT8; exact in real arithmetic, FP32 rounding apart.

Context split. HarDNetSeg concatenates ``[x, avg9x9(x), x / (sum(x) + 0.1)]`` before each up-block, and the block's layers read that
concatenation (directly or inside their own Concat). One per-tensor INT8 scale rounds the quotients (~1e-4) to zero,
so those convs must not read it in INT8 — but the quotients are only a third of their input channels or less.
Since ``conv(W, cat[a, q]) == conv(W_a, a) + conv(W_q, q)``, each such conv becomes an INT8-friendly conv over the
ordinary channels plus a float conv over the quotient channels, summed. The rewrite is exact in real arithmetic;
in FP32 it differs by rounding only (tests compare it with the original graph).

Separable pooling. The context's 9x9 mean (stride 1, zero padding counted) equals a 9x1 mean followed by a 1x9 mean:
18 taps per output instead of 81, which matters for ONNX Runtime's INT8 average pool (it has no blocked kernel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..onnx_graph import context_nodes


@dataclass(frozen=True)
class Source:
    tensor: str
    channels: int
    quotient: bool


def _channels(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            shapes[info.name] = dims[1].dim_value
    return shapes


@dataclass(frozen=True)
class Rewrites:
    split_convs: int
    separable_pools: int


def int8_friendly(model: onnx.ModelProto) -> tuple[onnx.ModelProto, Rewrites]:
    """A rewritten copy of ``model`` and what was rewritten."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    split = split_context_convs(model)
    pools = separable_pools(model.graph)
    return model, Rewrites(split, pools)


def separable_pools(graph: onnx.GraphProto) -> int:
    """Replace square stride-1 average pools that count padding by a vertical then a horizontal pool."""
    rewritten: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel, pads = attrs.get("kernel_shape", []), attrs.get("pads", [0, 0, 0, 0])
        if (node.op_type != "AveragePool" or len(kernel) != 2 or kernel[0] != kernel[1] or kernel[0] < 4
                or attrs.get("strides", [1, 1]) != [1, 1] or attrs.get("count_include_pad", 0) != 1
                or len(set(pads)) != 1 or attrs.get("ceil_mode", 0) or attrs.get("auto_pad", b"NOTSET") != b"NOTSET"):
            rewritten.append(node)
            continue
        k, p = kernel[0], pads[0]
        rows = f"{node.name}_rows"
        rewritten.append(helper.make_node("AveragePool", [node.input[0]], [f"{rows}_output"], name=rows,
                                          kernel_shape=[k, 1], pads=[p, 0, p, 0], count_include_pad=1))
        rewritten.append(helper.make_node("AveragePool", [f"{rows}_output"], list(node.output), name=node.name,
                                          kernel_shape=[1, k], pads=[0, p, 0, p], count_include_pad=1))
        count += 1
    del graph.node[:]
    graph.node.extend(rewritten)
    return count


def split_context_convs(model: onnx.ModelProto) -> int:
    """Split, in place, the convs that read the context's quotients; returns how many were split."""
    graph = model.graph
    context = context_nodes(graph, ("ReduceSum", "ReduceMean"))
    producer = {out: node for node in graph.node for out in node.output}
    # The quotient tensors are the context chain's outputs that leave it (they feed the Concat).
    read_outside = {name for node in graph.node if node.name not in context for name in node.input}
    quotients = {out for node in graph.node if node.name in context for out in node.output if out in read_outside}
    if not quotients:
        return 0
    channels = _channels(model)
    initializers = {init.name: init for init in graph.initializer}

    def sources(tensor: str) -> list[Source] | None:
        """The tensors a channel-axis Concat chain gathers, in channel order; None if not splittable."""
        node = producer.get(tensor)
        if tensor in quotients:
            return [Source(tensor, channels[tensor], True)] if tensor in channels else None
        if node is not None and node.op_type == "Concat" and _axis(node) == 1:
            parts = [sources(name) for name in node.input]
            if any(p is None for p in parts):
                return None
            return [s for p in parts if p is not None for s in p]
        return [Source(tensor, channels[tensor], False)] if tensor in channels else None

    rewritten: list[onnx.NodeProto] = []
    split = 0
    for node in graph.node:
        parts = sources(node.input[0]) if node.op_type == "Conv" and node.input[1] in initializers else None
        if (parts is None or not any(p.quotient for p in parts) or all(p.quotient for p in parts)
                or _group(node) != 1):
            rewritten.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        offsets = np.cumsum([0] + [p.channels for p in parts])
        if offsets[-1] != weight.shape[1]:
            rewritten.append(node)
            continue
        rewritten.extend(_split(node, parts, offsets, weight, graph))
        split += 1
    del graph.node[:]
    graph.node.extend(rewritten)
    _drop_dead(graph)
    return split


def _split(node: onnx.NodeProto, parts: list[Source], offsets: np.ndarray, weight: np.ndarray,
           graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    new: list[onnx.NodeProto] = []
    outputs = []
    for quotient, suffix in ((False, ""), (True, "_context")):
        chosen = [i for i, p in enumerate(parts) if p.quotient == quotient]
        columns = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in chosen])
        name = f"{node.name}{suffix}"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[:, columns]), f"{name}.weight"))
        inputs = [parts[i].tensor for i in chosen]
        if len(inputs) > 1:
            new.append(helper.make_node("Concat", inputs, [f"{name}_input"], name=f"{name}_input", axis=1))
            inputs = [f"{name}_input"]
        bias = list(node.input[2:3]) if not quotient else []
        outputs.append(f"{name}_output")
        new.append(helper.make_node("Conv", [inputs[0], f"{name}.weight", *bias], [outputs[-1]], name=name))
        new[-1].attribute.extend(node.attribute)
    new.append(helper.make_node("Add", outputs, [node.output[0]], name=f"{node.name}_sum"))
    return new


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 0)


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def _drop_dead(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers nothing reads any more (the replaced convs' Concats and weights)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if needed & set(node.output):
            kept.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    live = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)
