"""ctrt: CenterTrack-HarDNet from a PyTorch checkpoint to a TensorRT engine to tracking on live cameras.

    >>> import ctrt
    >>> model = ctrt.load("export/demo_256x256.onnx")
    >>> for r in model.track("video.mp4", tracker="robust"):
    ...     print(r.stream, r.index, r.ids, r.boxes)

The names below load on first use: ``import ctrt`` imports no PyTorch, OpenCV or ONNX Runtime.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from .version import __version__

# The most pixels an image may have for OpenCV to decode it (8192x8192, above any camera; OpenCV's own default is
# 2^30, a 3 GiB frame). OpenCV reads it once, when it is first imported: a program that imports cv2 before ctrt
# keeps its own.
MAX_IMAGE_PIXELS = 2**26
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
# OpenCV and FFmpeg log to stderr on their own (a refused connection, a missing moov atom) beside ctrt's own line,
# from the command line and from Python alike; quiet unless the user asks (OPENCV_FFMPEG_LOGLEVEL=24: warnings).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

# Public name -> the module that defines it.
_EXPORTS = {
    "load": "api", "Model": "api", "Run": "run",
    "Session": "runtime.pipeline", "Results": "runtime.results",
    "RunReport": "runtime.reports", "StreamReport": "runtime.reports",
    "TrackerConfig": "runtime.tracker", "tracker_preset": "runtime.tracker", "PRESETS": "runtime.tracker",
    "Detections": "runtime.detections",
    "CtrtError": "errors", "Interrupted": "errors",
    "read_site": "api", "Site": "api", "run_plan": "api", "RunPlan": "plan", "plan_run": "plan",
    "MqttOptions": "site.mqtt", "HttpOptions": "site.http_options", "TrackerLike": "runtime.tracker_protocol",
    "register_backend": "runtime.backends.registry", "LoadOptions": "runtime.backends.registry",
    "OPTIONS": "options", "Line": "counting.shapes", "Zone": "counting.shapes", "CountEvent": "counting.events",
}
__all__ = ["__version__", "load", "Model", "Run", "Session", "Results", "RunReport", "StreamReport", "TrackerConfig",
           "tracker_preset", "PRESETS", "Detections", "CtrtError", "Interrupted", "read_site", "Site", "run_plan",
           "RunPlan", "plan_run", "MqttOptions", "HttpOptions", "TrackerLike", "register_backend", "LoadOptions",
           "OPTIONS", "Line", "Zone", "CountEvent"]

if TYPE_CHECKING:
    from .api import Model, Site, load, read_site, run_plan
    from .counting.events import CountEvent
    from .counting.shapes import Line, Zone
    from .errors import CtrtError, Interrupted
    from .runtime.detections import Detections
    from .runtime.pipeline import Session
    from .runtime.results import Results
    from .options import OPTIONS
    from .plan import RunPlan, plan_run
    from .run import Run
    from .runtime.backends.registry import LoadOptions, register_backend
    from .runtime.reports import RunReport, StreamReport
    from .runtime.tracker import PRESETS, TrackerConfig, tracker_preset
    from .runtime.tracker_protocol import TrackerLike
    from .site.http_options import HttpOptions
    from .site.mqtt import MqttOptions


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ctrt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
