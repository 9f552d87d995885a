"""Explicit quantization: a Q/DQ INT8 ONNX from ONNX Runtime's ``quantize_static``, for one of two targets.

``tensorrt`` (what TensorRT 10/11 build): symmetric INT8 activations and per-channel weights, zero points 0; the
heatmap head and the Sum-to-1 context stay float, the same layers the TensorRT calibrator path keeps out of INT8.

``cpu`` (ONNX Runtime's x86 kernels): uint8 activations with a zero point, so a ReLU folds into the quantized range
(8 bits for its [0, max] instead of 7) and every conv fuses into a QLinearConv; weights use 7 bits because AVX2 without
VNNI multiplies uint8 by int8 with VPMADDUBSW, whose 16-bit pair sums saturate at 8 bits (measured on a 2-core AMD
EPYC: heatmap SQNR 14 dB with 8-bit weights, 34 dB with 7). The heatmap head's 3x3 trunk is quantized too — only its logit layer
stays FP32 — because in FP32 it is an eighth of the model's CPU time; INT8 there costs 0.5 dB of heatmap SQNR.

Both first apply ``int8_rewrites`` so that only the context's quotient channels, not whole convs, stay float.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from ..onnx_graph import context_nodes, context_readers, fp32_layer_names
from ..errors import CtrtError
from .int8_rewrites import Rewrites, int8_friendly

METHODS = ("minmax", "entropy", "percentile")
TARGETS = ("tensorrt", "cpu")


def float_nodes(model: onnx.ModelProto, target: str) -> set[str]:
    """Nodes kept out of INT8 for ``target``."""
    if target == "tensorrt":
        return fp32_layer_names(model, include_context=True)
    graph = model.graph
    context = context_nodes(graph, ("ReduceSum", "ReduceMean"))
    logits = {node.name for node in graph.node if "hm" in node.output}
    return context | context_readers(graph, context) | logits


def quantize_onnx(source: Path, destination: Path, batches: Iterator[dict[str, np.ndarray]], count: int,
                  method: str, target: str) -> tuple[list[str], Rewrites]:
    """Write the Q/DQ model to ``destination`` from ``count`` batches; returns the nodes kept in float and the
    rewrites applied."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        """MinMax asks for one batch at a time (``set_range``) and merges its range before the next, so memory
        stays flat (ORT's own CalibMaxIntermediateOutputs drops every full chunk unmerged in 1.31)."""

        def __init__(self) -> None:
            self.left: int | None = None

        def __len__(self) -> int:
            return count

        def set_range(self, start_index: int, end_index: int) -> None:
            self.left = end_index - start_index

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.left is not None:
                if self.left == 0:
                    return None
                self.left -= 1
            return next(batches, None)

    model, rewrites = int8_friendly(onnx.load(str(source)))
    kept = sorted(float_nodes(model, target))
    cpu = target == "cpu"
    logging.disable(logging.WARNING)  # ORT logs advice about its pre-processing step through the root logger
    try:
        quantize_static(
            model, str(destination), Reader(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8 if cpu else QuantType.QInt8, weight_type=QuantType.QInt8,
            per_channel=True, reduce_range=cpu,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            nodes_to_exclude=kept,
            extra_options={"ActivationSymmetric": not cpu, "WeightSymmetric": True,
                           "CalibStridedMinMax": 1 if method == "minmax" else None},
        )
    except (ValueError, RuntimeError) as exc:
        raise CtrtError(f"ONNX Runtime quantization failed: {str(exc).strip().splitlines()[0]}") from None
    finally:
        logging.disable(logging.NOTSET)
    return kept, rewrites
