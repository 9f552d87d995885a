"""ONNX graph analysis shared by quantization and engine building: which layers must stay in float (the heatmap
head, the Sum-to-1 context), whether a model is already quantized or FP16."""

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


def context_nodes(graph: onnx.GraphProto, reductions: tuple[str, ...]) -> set[str]:
    """The Sum-to-1 context ``x / (reduce(x) + c)`` (and its ``* 1/area`` in the FP16-safe form), found from its
    reductions: they and the Add/Div/Mul chain that consumes them (graph.node is topologically sorted)."""
    names = {node.name for node in graph.node if node.op_type in reductions}
    frontier = {node.output[0] for node in graph.node if node.op_type in reductions}
    for node in graph.node:
        if frontier & set(node.input) and node.op_type in ("Add", "Div", "Mul"):
            names.add(node.name)
            frontier.update(node.output)
    return names


def context_readers(graph: onnx.GraphProto, context: set[str]) -> set[str]:
    """Concats that carry the context's tiny quotients next to O(1) features, and every layer reading them.

    One per-tensor INT8 scale for such a tensor rounds the quotients to zero, so its readers must not be INT8.
    Followed through Concat/Slice (which pass channels on unchanged) but not past a Conv (which mixes them).
    """
    produced = {out for node in graph.node if node.name in context for out in node.output}
    names: set[str] = set()
    for node in graph.node:  # topological order: a Concat's inputs are known before it
        if produced & set(node.input):
            names.add(node.name)
            if node.op_type in ("Concat", "Slice", "Split"):
                produced.update(node.output)
    return names


def fp32_layer_names(model: onnx.ModelProto, include_context: bool = False) -> set[str]:
    """Layers kept out of reduced precision: the heatmap head; the original Sum-to-1 (its sum overflows FP16);
    with ``include_context`` (INT8) the FP16-safe form too, whose tiny quotients INT8 cannot represent."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    names = context_nodes(graph, ("ReduceSum", "ReduceMean") if include_context else ("ReduceSum",))
    if include_context:
        names |= context_readers(graph, names)
    for output in FP32_OUTPUTS:
        if output in outputs:
            names |= exclusive_head_nodes(graph, output)
    return names


def is_fp32_layer(layer_name: str, onnx_names: set[str]) -> bool:
    """TensorRT names a layer after its ONNX node, adding a suffix when one node becomes several layers."""
    return layer_name in onnx_names or any(layer_name.startswith(n + "_") for n in onnx_names)


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)


def onnx_is_half(model: onnx.ModelProto) -> bool:
    return any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def tensor_specs(model: onnx.ModelProto) -> dict[str, tuple[str, list[int]]]:
    """Every graph input and output as (numpy dtype name, dims), -1 for a symbolic dimension (the dynamic batch)."""
    specs = {}
    for value in [*model.graph.input, *model.graph.output]:
        tensor = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        specs[value.name] = (dtype, [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim])
    return specs
