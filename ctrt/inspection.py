"""``ctrt inspect``: what a checkpoint or an exported model contains, as (field, value) rows."""

from __future__ import annotations

from pathlib import Path

from .artifacts import read_meta
from .errors import CtrtError


def _heads(heads: dict[str, int]) -> str:
    return ", ".join(f"{name}:{classes}" for name, classes in heads.items())


def describe_checkpoint(path: Path) -> list[tuple[str, str]]:
    from .model.checkpoint import infer_config, read_state_dict
    from .model.seg import HarDNetSeg, count_parameters

    state, epoch = read_state_dict(path)
    config = infer_config(state, str(path))
    expected = HarDNetSeg(config).state_dict()
    matching = sum(1 for k, v in state.items() if k in expected and expected[k].shape == v.shape)
    return [
        ("kind", "PyTorch checkpoint"),
        ("arch", config.name),
        ("heads", _heads(config.heads)),
        ("inputs", ", ".join(config.inputs)),
        ("parameters", f"{count_parameters(HarDNetSeg(config)):,}"),
        ("state_dict", f"{len(state)} entries, {matching} match {config.name}"),
        ("epoch", "unknown" if epoch is None else str(epoch)),
    ]


def describe_onnx(path: Path) -> list[tuple[str, str]]:
    import onnx

    if not path.is_file():
        raise CtrtError(f"model not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CtrtError(f"{path} is not a readable ONNX file: {str(exc).strip().splitlines()[0]}") from None
    meta = read_meta(path)

    def dims(value: onnx.ValueInfoProto) -> str:
        return "x".join(d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim)

    initializers = {i.name for i in model.graph.initializer}
    return [
        ("kind", f"ONNX opset {model.opset_import[0].version}, {len(model.graph.node)} nodes"),
        ("arch", meta.config.name),
        ("heads", _heads(meta.config.heads)),
        ("inputs", ", ".join(f"{i.name} {dims(i)}" for i in model.graph.input if i.name not in initializers)),
        ("outputs", ", ".join(f"{o.name} {dims(o)}" for o in model.graph.output)),
        ("input size", "x".join(map(str, meta.input_size))),
        ("precision", meta.precision),
        ("source", meta.source + (" (random weights)" if meta.random_weights else "")),
        ("source sha256", meta.source_sha256[:16] or "-"),
        ("ctrt version", meta.ctrt_version),
        *_parser_rows(path),
    ]


def _parser_rows(path: Path) -> list[tuple[str, str]]:
    """Per TensorRT line, whether its ONNX parser takes the graph (``trt_rules``), or the first reasons why not."""
    from .trt_rules import LINES, check_file

    refusals = check_file(path)
    rows = []
    for line in LINES:
        mine = [r.text() for r in refusals if r.line == line]
        shown = "; ".join(mine[:3]) + (f"; {len(mine) - 3} more" if len(mine) > 3 else "")
        rows.append((f"TensorRT {line}", shown or "parses"))
    return rows


def describe(path: Path) -> list[tuple[str, str]]:
    if path.suffix == ".onnx":
        return describe_onnx(path)
    return describe_checkpoint(path)
