"""Your own backend, registered by one call: here ONNX Runtime with session options of your choosing, opened for
``ortcustom://`` URLs. Any runtime works the same way (OpenVINO, a remote server): give ``ctrt.load`` an object
that takes ``{input name: array}`` and returns ``{output name: array}`` and says what the model is (``meta``).

    python examples/custom_backend.py MODEL.onnx clip.mp4
"""

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort

import ctrt
from ctrt.artifacts import read_meta


class CustomOrtBackend:
    """The backend protocol (``ctrt/runtime/backends/base.py``): ``meta``, ``name``, a context manager, a call."""

    last_ms = device_bytes = run_on_device = None  # no device-side timings to offer

    def __init__(self, path: Path, threads: int) -> None:
        self.meta = read_meta(path)  # the sidecar ctrt export wrote: input size, heads, mean/std
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.name = f"custom onnxruntime ({threads} threads)"
        self.calls = 0

    def __enter__(self) -> "CustomOrtBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        return dict(zip(self.outputs, self.session.run(self.outputs, feed)))


def open_custom(model: str, options: ctrt.LoadOptions) -> CustomOrtBackend:
    """``ortcustom:///abs/path/model.onnx`` -> the backend (``options`` are ``ctrt.load``'s keywords)."""
    return CustomOrtBackend(Path(model.split("://", 1)[1]), max(options.threads, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an exported .onnx (with its sidecar)")
    parser.add_argument("source")
    args = parser.parse_args()

    ctrt.register_backend("ortcustom://", open_custom)
    with ctrt.load(f"ortcustom://{Path(args.model).resolve()}", threads=1) as model:
        frames = sum(1 for _ in model.track(args.source))
        print(f"{frames} frames tracked on {model.name}, {model.backend.calls} model calls")


if __name__ == "__main__":
    main()
