"""Triton Python-backend model written by ``ctrt triton --backend python``: the ONNX beside it on ONNX Runtime.

This file runs inside Triton's Python stub, not in ctrt: it needs only numpy and onnxruntime in the server's Python.
The requests that Triton's dynamic batcher gathers into one ``execute`` run as one batch.
"""

import json
import os
import sys
from pathlib import Path

# The stub's embedded interpreter ignores PYTHONPATH; honour it, so packages can come from a separate environment
# (``ctrt serve`` points it at the server's venv; in NVIDIA's container it is unset and this does nothing).
sys.path[:0] = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry not in ("", *sys.path)]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        gpu = args["model_instance_kind"] == "GPU" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]
        self.batching = config.get("max_batch_size", 0) > 0

    def _run(self, feeds: list[dict]) -> list[list]:
        """One session call for all ``feeds``, its outputs cut back into each request's rows."""
        rows = [len(feed[self.inputs[0]]) for feed in feeds]
        joined = {name: np.concatenate([feed[name] for feed in feeds]) for name in self.inputs}
        results = self.session.run(self.outputs, joined)
        cuts = np.cumsum(rows)[:-1]
        return [list(parts) for parts in zip(*(np.split(result, cuts) for result in results))]

    def execute(self, requests: list) -> list:
        feeds = [{name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.inputs}
                 for request in requests]
        try:
            # Without a batch dimension each request is a whole model batch of its own.
            per_request = self._run(feeds) if self.batching else [self._run([feed])[0] for feed in feeds]
        except Exception as exc:  # onnxruntime's own error types; the client gets the message
            error = pb_utils.TritonError(f"ONNX Runtime failed: {str(exc).strip().splitlines()[0]}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(name, np.ascontiguousarray(array))
                                                           for name, array in zip(self.outputs, arrays)])
                for arrays in per_request]
