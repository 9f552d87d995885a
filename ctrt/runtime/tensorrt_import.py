"""Checking for TensorRT lazily, so ``import ctrt`` works where it is absent, with one clear error where needed.

Callers then ``import tensorrt as trt`` inside the function, which lets mypy check every call against the stubs.
"""

from __future__ import annotations

import importlib

from ..errors import CtrtError

NO_TENSORRT = ("TensorRT is not installed here ({reason}); on a Jetson it comes with JetPack (python3-libnvinfer). "
               "Without TensorRT, run the ONNX model on ONNX Runtime instead: ctrt run MODEL.onnx")


def require_tensorrt() -> int:
    """TensorRT's major version, or a CtrtError saying what is missing."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as exc:
        raise CtrtError(NO_TENSORRT.format(reason=str(exc).splitlines()[0])) from None
    # tensorrt-stubs alone makes ``import tensorrt`` succeed as an empty namespace package.
    if not hasattr(trt, "Builder"):
        raise CtrtError(NO_TENSORRT.format(reason="only type stubs found"))
    return int(str(trt.__version__).split(".")[0])
