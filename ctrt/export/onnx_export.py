"""PyTorch -> ONNX for HarDNetSeg: static spatial size, plain ops TensorRT 8.5-11 build, optional dynamic batch."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..artifacts import ArtifactMeta, embed_meta
from ..errors import CtrtError
from .parity import random_feed

if TYPE_CHECKING:
    import onnx

# Logit given to non-peaks before TopK: far below any real score, and finite so FP16 engines keep it.
HEATMAP_FLOOR = -1e4


@dataclass(frozen=True)
class ExportOptions:
    input_h: int = 512
    input_w: int = 512
    opset: int = 17
    batch: int = 1
    dynamic_batch: bool = False
    simplify: bool = True
    source_hw: tuple[int, int] | None = None  # --preprocess-in-graph for frames of this size
    topk: int | None = None  # --decode-in-graph with K candidates
    half: bool = False  # --fp16: FP16 weights and activations, FP32 I/O, heatmap head and context reductions



@contextlib.contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """File descriptor 1 into a scratch file for the block: on a failure the TorchScript exporter's C++ log prints
    the whole IR graph (a thousand lines) to stdout; the CLI's one error line says what failed."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)

def export_onnx(module: nn.Module, input_names: list[str], output_names: list[str], meta: ArtifactMeta,
                options: ExportOptions, destination: Path) -> list[str]:
    """Write the ONNX to ``destination`` (the caller makes it atomic). Returns the op types in the graph."""
    import onnx

    module.eval()
    # Tracing only needs shapes and dtypes: the same seeded inputs the benchmarks feed.
    feeds = {name: torch.from_numpy(array) for name, array in
             random_feed(input_names, options.batch, options.input_h, options.input_w, options.source_hw).items()}
    dynamic = {n: {0: "batch"} for n in input_names + output_names} if options.dynamic_batch else None
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings(), _native_stdout_silenced():
            warnings.simplefilter("ignore")  # tracer warnings about the int() sizes we make static on purpose
            # A file-like target is supported by the TorchScript exporter, though the annotation says path.
            torch.onnx.export(module, tuple(feeds.values()), buffer, dynamo=False,  # type: ignore[arg-type]
                              opset_version=options.opset, input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic, do_constant_folding=True)
    except Exception as exc:  # the exporter reports unsupported opsets and ops this way
        first = str(exc).strip().splitlines()[0].split(" [Caused by ")[0]
        raise CtrtError(f"ONNX export failed: {first}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    if options.simplify:
        proto = simplify(proto)
    onnx.checker.check_model(proto, full_check=True)
    embed_meta(proto, meta)
    onnx.save(proto, str(destination))
    return sorted({node.op_type for node in proto.graph.node})


def simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(proto, check_n=0)
    except Exception as exc:
        raise CtrtError(f"onnx-simplifier failed ({str(exc).strip().splitlines()[0]}); retry with --no-simplify") from None
    if not ok:
        raise CtrtError("onnx-simplifier could not validate its result; retry with --no-simplify")
    return simplified

