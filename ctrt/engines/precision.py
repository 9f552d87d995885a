"""Which layers must stay FP32 in an FP16 engine, found from the ONNX graph before TensorRT sees it."""

from __future__ import annotations

from collections import defaultdict

import onnx

# The heatmap head's logits feed sigmoid and the score threshold; CenterTrack's confidence must not lose precision.
FP32_OUTPUTS = ("hm",)


def exclusive_head_nodes(graph: onnx.GraphProto, output: str) -> set[str]:
    """Nodes that only ``output`` depends on (its head), walking back until a tensor also feeds another output."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, int] = defaultdict(int)
    for node in graph.node:
        for name in node.input:
            consumers[name] += 1
    head: set[str] = set()
    frontier = [output]
    while frontier:
        tensor = frontier.pop()
        node = producer.get(tensor)
        if node is None or node.name in head:
            continue
        head.add(node.name)
        for name in node.input:
            # A shared tensor (the trunk's features) or a weight ends the walk there.
            if consumers[name] == 1 and name in producer:
                frontier.append(name)
    return head


def sum_to_one_nodes(graph: onnx.GraphProto) -> set[str]:
    """The original ``x / (x.sum() + 0.1)``: ReduceSum and what consumes it (overflows FP16 at stride 4)."""
    sums = {node.output[0] for node in graph.node if node.op_type == "ReduceSum"}
    names = {node.name for node in graph.node if node.op_type == "ReduceSum"}
    frontier = set(sums)
    for node in graph.node:
        if frontier & set(node.input) and node.op_type in ("Add", "Div"):
            names.add(node.name)
            frontier.update(node.output)
    return names


def fp32_layer_names(model: onnx.ModelProto) -> set[str]:
    graph = model.graph
    outputs = {o.name for o in graph.output}
    names = sum_to_one_nodes(graph)
    for output in FP32_OUTPUTS:
        if output in outputs:
            names |= exclusive_head_nodes(graph, output)
    return names


def is_fp32_layer(layer_name: str, onnx_names: set[str]) -> bool:
    """TensorRT names a layer after its ONNX node, adding a suffix when one node becomes several layers."""
    return layer_name in onnx_names or any(layer_name.startswith(n + "_") for n in onnx_names)
