"""Triton Python-backend model written by ``ctrt triton --stateful``: one camera stream is one Triton sequence.

Per correlation id it keeps the stream's previous frame, so a request carries only the current camera frame (raw
uint8, or JPEG decoded here with OpenCV) and last frame's tracks as boxes in input pixels, which it draws into
pre_hm with ctrt's own renderer (``ctrt_prehm.py`` beside this file, copied from ctrt). The network itself is the
repository's ``<name>_net`` model (any backend), called through Triton's BLS with every request of this execute as
one batch; its top-K outputs are the responses.

The first request of a sequence (START) may carry ``pre_frame``/``pre_frame_jpeg``: a client restarting a sequence
that the server lost (a restart, the idle timeout) sends the frame before, so tracking goes on as if nothing
happened. A request with END and no frame closes the sequence. This file runs inside Triton's Python stub: it needs
numpy and OpenCV in the server's Python, not ctrt.
"""

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# The stub's embedded interpreter ignores PYTHONPATH; honour it (see model.py of --backend python).
sys.path[:0] = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry not in ("", *sys.path)]
sys.path.insert(0, str(Path(__file__).parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402
from ctrt_prehm import PreHeatmapRenderer  # noqa: E402

LOST = "ctrt: no previous frame for sequence"  # the client restarts the sequence on this (and on Triton's START error)


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.stateful = json.loads(config["parameters"]["ctrt_stateful"]["string_value"])
        self.outputs = [tensor["name"] for tensor in config["output"]]
        self.idle_s = int(config["sequence_batching"]["max_sequence_idle_microseconds"]) / 1e6
        h, w = self.stateful["input_size"]
        self.source_hw = tuple(self.stateful["source_size"])
        self.renderer = PreHeatmapRenderer(h, w)
        self.pre_hm = np.zeros((1, 1, h, w), np.float32)
        self.previous: dict[int, tuple[np.ndarray, float]] = {}  # correlation id -> (frame, last seen)

    def _frame(self, request: Any, name: str) -> np.ndarray | None:
        raw = pb_utils.get_input_tensor_by_name(request, name)
        if raw is not None:
            return raw.as_numpy()[0].copy()  # the request's memory goes with the request
        encoded = pb_utils.get_input_tensor_by_name(request, name + "_jpeg")
        if encoded is None:
            return None
        data = encoded.as_numpy().reshape(-1)[0]
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"{name}_jpeg is not a JPEG image")
        if frame.shape[:2] != self.source_hw:
            raise ValueError(f"{name}_jpeg is {frame.shape[1]}x{frame.shape[0]}; this model takes "
                             f"{self.source_hw[1]}x{self.source_hw[0]} frames")
        return frame

    @staticmethod
    def _control(request: Any, name: str) -> int:
        return int(pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)[0])

    def _feed(self, request: Any, now: float) -> dict[str, np.ndarray] | None:
        """One request's network inputs, its sequence's state updated; None for a closing request."""
        sequence, start, end = (self._control(request, n) for n in ("CORRID", "START", "END"))
        frame = self._frame(request, "frame")
        if frame is None:
            if not end:
                raise ValueError("a request without a frame must end its sequence (END)")
            self.previous.pop(sequence, None)
            return None
        if start:
            given = self._frame(request, "pre_frame")
            previous = frame if given is None else given  # CenterTrack's first frame is its own previous frame
        elif sequence in self.previous:
            previous = self.previous[sequence][0]
        else:
            raise ValueError(f"{LOST} {sequence} (the server restarted or the sequence timed out); start it again")
        if end:
            self.previous.pop(sequence, None)
        else:
            self.previous[sequence] = (frame, now)
        feed = {"frame": frame[None], "pre_frame": previous[None]}
        if "pre_hm" in self.stateful["net_inputs"]:
            rows = pb_utils.get_input_tensor_by_name(request, "pre_boxes")
            boxes = rows.as_numpy()[0] if rows is not None else np.zeros((0, 5), np.float32)
            self.renderer.draw(boxes[boxes[:, 4] > 0, :4], self.pre_hm[0, 0])
            feed["pre_hm"] = self.pre_hm.copy()
        return feed

    def _evict(self, now: float) -> None:
        """Forget sequences idle longer than Triton's own timeout (Triton has released them already)."""
        for sequence in [s for s, (_, seen) in self.previous.items() if now - seen > self.idle_s]:
            del self.previous[sequence]

    def execute(self, requests: list) -> list:
        now = time.monotonic()
        self._evict(now)
        feeds: list[dict[str, np.ndarray] | None | str] = []
        for request in requests:
            try:
                feeds.append(self._feed(request, now))
            except ValueError as exc:
                feeds.append(str(exc))
        batch = [feed for feed in feeds if isinstance(feed, dict)]
        results: list[list[np.ndarray]] = []
        if batch:
            inputs = [pb_utils.Tensor(name, np.ascontiguousarray(np.concatenate([f[name] for f in batch])))
                      for name in self.stateful["net_inputs"]]
            answer = pb_utils.InferenceRequest(model_name=self.stateful["net"], requested_output_names=self.outputs,
                                               inputs=inputs).exec()
            if answer.has_error():
                error = pb_utils.TritonError(f"{self.stateful['net']}: {answer.error().message()}")
                return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
            arrays = [pb_utils.get_output_tensor_by_name(answer, name).as_numpy() for name in self.outputs]
            results = [[array[row : row + 1] for array in arrays] for row in range(len(batch))]
        responses, done = [], iter(results)
        for feed in feeds:
            if isinstance(feed, str):
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(feed)))
                continue
            # A closing request gets empty top-K rows of the right shapes (its client reads nothing from them).
            arrays = next(done) if feed is not None else [np.zeros((1, *dims), np.dtype(dtype)) for dtype, dims in
                                                            self.stateful["outputs"]]
            responses.append(pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(n, np.ascontiguousarray(a)) for n, a in zip(self.outputs, arrays)]))
        return responses
