"""Explicit quantization: a Q/DQ INT8 ONNX from ONNX Runtime's ``quantize_static`` (what TensorRT 11 requires).

Symmetric INT8 activations and per-channel weights (zero points 0, as TensorRT wants); the heatmap head and the
Sum-to-1 context stay FP32, the same layers the TensorRT calibrator path keeps out of INT8.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from ..engines.precision import fp32_layer_names

METHODS = ("minmax", "entropy", "percentile")
# MinMax merges ranges every this many batches, so memory stays flat however many images are used.
MINMAX_MERGE_EVERY = 16


def quantize_onnx(source: Path, destination: Path, batches: Iterator[dict[str, np.ndarray]], method: str) -> list[str]:
    """Write the Q/DQ model to ``destination``; returns the nodes kept in float."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    kept = sorted(fp32_layer_names(onnx.load(str(source), load_external_data=False), include_context=True))
    logging.disable(logging.WARNING)  # ORT logs advice about its pre-processing step through the root logger
    try:
        quantize_static(
            str(source), str(destination), Reader(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[method],
            nodes_to_exclude=kept,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "CalibMaxIntermediateOutputs": MINMAX_MERGE_EVERY if method == "minmax" else None},
        )
    finally:
        logging.disable(logging.NOTSET)
    return kept


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(node.op_type == "QuantizeLinear" for node in model.graph.node)
