"""The per-frame tracker loop above any backend: pre-process, pre_hm, inference, decode, track."""

from __future__ import annotations

import time

import numpy as np

from ..errors import CtrtError
from .backends.base import Backend
from .decode import Decoder, decode_topk
from .detections import Detections
from .prehm import PreHeatmapRenderer
from .preprocess import DOWN_RATIO, Preprocessor
from .timing import StageTimes
from .tracker import Tracker, TrackerConfig

STAGES = ("preprocess", "pre_hm", "infer", "decode", "track")


class TrackingPipeline:
    """CenterTrack's ``Detector.run`` + ``Tracker.step`` for one camera, with every buffer allocated once."""

    def __init__(self, backend: Backend, k: int = 100, threshold: float = 0.3,
                 tracker: TrackerConfig | None = None) -> None:
        meta = backend.meta
        if meta.batch not in (0, 1):
            raise CtrtError(f"this model has a fixed batch of {meta.batch}; tracking one stream needs batch 1 "
                            "(re-export with --batch 1 or --dynamic-batch)")
        h, w = meta.input_size
        self.backend = backend
        self.inputs = meta.inputs
        # Fast-path exports do the letterbox and/or the top-K inside the graph; the sidecar says which.
        self.source_hw = tuple(meta.extra["source_size"]) if meta.extra.get("preprocess") == "graph" else None
        self.decode_in_graph = meta.extra.get("decode") == "graph"
        self._previous_frame: np.ndarray | None = None
        self.preprocess = Preprocessor(h, w, meta.mean, meta.std)
        self.renderer = PreHeatmapRenderer(h, w)
        self.decoder = Decoder(meta.config.num_classes, h // DOWN_RATIO, w // DOWN_RATIO, k, threshold)
        self.threshold = threshold
        self.tracker = Tracker(tracker)
        self.image = np.empty((1, 3, h, w), np.float32)
        self.pre_img = np.empty((1, 3, h, w), np.float32)
        self.pre_hm = np.zeros((1, 1, h, w), np.float32)
        self.times = StageTimes(STAGES)
        self._durations = np.zeros(len(STAGES))
        self.frames = 0

    def reset(self) -> None:
        self.tracker.reset()
        self.frames = 0

    def __call__(self, frame: np.ndarray) -> Detections:
        clock = time.perf_counter
        t0 = clock()
        if self.source_hw is None:
            geometry = self.preprocess(frame, self.image[0])
            if self.frames == 0:
                np.copyto(self.pre_img, self.image)  # the first frame is its own previous frame
        else:
            if frame.shape[:2] != self.source_hw:
                raise CtrtError(f"this model pre-processes {self.source_hw[1]}x{self.source_hw[0]} frames in its graph; "
                                f"the source gives {frame.shape[1]}x{frame.shape[0]} (re-export with --source-size)")
            geometry = self.preprocess.geometry_for(frame)
        t1 = clock()
        if "pre_hm" in self.inputs:
            self.renderer.render(self.tracker.pre_hm_boxes(), geometry.to_input, self.pre_hm[0, 0])
        t2 = clock()
        if self.source_hw is None:
            tensors = {"image": self.image, "pre_img": self.pre_img, "pre_hm": self.pre_hm}
        else:
            current = frame[None]
            previous = current if self._previous_frame is None else self._previous_frame
            tensors = {"frame": current, "pre_frame": previous, "pre_hm": self.pre_hm}
            self._previous_frame = current
        outputs = self.backend({name: tensors[name] for name in self.inputs})
        t3 = clock()
        heads = {name: value[0] for name, value in outputs.items()}
        dets = decode_topk(heads, geometry, self.threshold) if self.decode_in_graph else self.decoder(heads, geometry)
        t4 = clock()
        tracks = self.tracker.step(dets)
        t5 = clock()
        # This frame's tensor is the next frame's pre_img: swap instead of copying.
        self.image, self.pre_img = self.pre_img, self.image
        self.frames += 1
        self._durations[:] = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
        self.times.add(self._durations * 1e3)
        return tracks
