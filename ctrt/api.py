"""The Python API: ``ctrt.load(model)`` gives a ``Model``; ``Model.track(sources)`` runs the tracker over cameras,
videos, folders or URLs as a ``Run`` of ``Results``; ``Model.session()`` tracks frames the caller captures itself.

The command line is a client of these calls: ``ctrt run M -s A -s B --save-dir D`` is
``ctrt.load(M).track([A, B], save_dir=D)`` with a progress display attached.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import ArtifactMeta
from .errors import CtrtError
from .options import check, default
from .counting.shapes import shapes_for
from .plan import RunPlan, ShapeSpecs, Sources, plan_run, plan_site
from .run import Run, start_run
from .runtime.backends.base import Backend
from .runtime.backends.registry import LoadOptions, open_backend
from .runtime.model_notes import model_notes
from .runtime.frames import bgr_frame
from .runtime.pipeline import Session, StreamState
from .runtime.results import Results
from .runtime.stream_setup import check_stream_name
from .runtime.tracker import TrackerConfig
from .runtime.tracker_protocol import TrackerSource, tracker_source
from .site.file import SiteFile, read_site_file
from .sizes import parse_input_size

log = logging.getLogger("ctrt")


def load(model: str | Path, *, device: str = default("device"), threads: int = default("threads"),
         input_size: str | tuple[int, int] | None = None, allow_partial: bool = False, cuda_graph: bool = False,
         shm: bool = False, reconnects: int | str = default("reconnects"), transport: str | None = None) -> Model:
    """Open a model by its kind: ``.onnx`` (ONNX Runtime), ``.engine`` (TensorRT), ``.pth`` (PyTorch, at
    ``input_size``, default 512x512), ``triton://HOST:PORT/NAME`` / ``http://HOST:PORT/NAME`` (Triton), or a kind
    registered with ``ctrt.register_backend``::

        >>> model = ctrt.load("export/demo_256x256.onnx", device="cpu")
        >>> model.meta.input_size
        (256, 256)

    ``device``: auto, cpu, cuda (ONNX Runtime also tensorrt); ``threads``: ONNX Runtime's intra-op threads (0: all
    cores); ``cuda_graph``: replay a TensorRT engine as a CUDA graph; ``shm``/``reconnects``: a Triton model on this
    host through shared memory, and how often to reconnect to its server; ``transport``: how frames travel to a
    stateful Triton model (``ctrt triton --stateful``), ``raw`` (default) or ``jpeg[:QUALITY]`` (default 90).
    """
    if not isinstance(model, (str, Path)) or not str(model):
        raise CtrtError(f"model {model!r}: give a model file or URL", option="model")
    for name, value in (("device", device), ("threads", threads), ("allow_partial", allow_partial),
                        ("cuda_graph", cuda_graph), ("shm", shm), ("reconnects", reconnects),
                        ("transport", transport)):
        check(name, value)
    if input_size is not None and not isinstance(input_size, (str, tuple)):
        raise CtrtError(f"input_size {input_size!r}: give HxW or (h, w)", option="input_size")
    hw = parse_input_size(input_size if isinstance(input_size, str) else "x".join(map(str, input_size or (512, 512))))
    backend = open_backend(model, LoadOptions(device, threads, hw, allow_partial, cuda_graph, shm, reconnects,
                                              transport, log.warning))
    if input_size is not None and backend.meta.input_size != hw:
        backend.__exit__(None, None, None)
        h, w = backend.meta.input_size
        raise CtrtError(f"input_size {hw[0]}x{hw[1]}: {model} takes {h}x{w} (an exported model carries its own size)",
                        option="input_size")
    return Model(backend, str(model))


class Model:
    """A model ready to track: its backend, the artifact's ``meta`` and the ``notes`` its user should read (random
    weights, the built-in demo model, INT8 on a CPU whose kernels saturate). Closing it releases the backend::

        >>> with ctrt.load("model.onnx") as model:
        ...     print(model.name, model.meta.input_size, model.notes)
    """

    def __init__(self, backend: Backend, path: str) -> None:
        self.backend, self.path = backend, path
        self.meta: ArtifactMeta = backend.meta
        self.notes: list[str] = model_notes(backend)
        self.closed = False
        self._detector: tuple[int, float, StreamState] | None = None

    @property
    def name(self) -> str:
        """The backend it runs on, e.g. ``onnxruntime (CPU)``."""
        return self.backend.name

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the backend (device memory, sessions, connections)."""
        self.closed = True
        self.backend.__exit__(None, None, None)

    def _open(self) -> None:
        if self.closed:
            raise CtrtError(f"model: {self.path} was closed; load it again", option="model")

    def session(self, *, tracker: str | TrackerConfig | TrackerSource = "centertrack", topk: int = default("topk"),
                threshold: float | None = None, name: str = "session", fps: float | None = None,
                lines: ShapeSpecs = None, zones: ShapeSpecs = None) -> Session:
        """A tracker for frames the caller captures itself: ``r = session.update(frame)`` per frame::

            >>> session = model.session(tracker="robust")
            >>> r = session.update(frame)

        ``tracker``: a preset (centertrack, robust), a spec like ``"robust,gate=1"``, a ``TrackerConfig``, or the
        caller's tracker (``ctrt.TrackerLike``, or a class or factory of them);
        ``threshold``: the score from which detections are reported and start tracks (default 0.3);
        ``fps``: the camera's frame rate, for ``update(frame, timestamp=...)`` when the loop keeps only some frames,
        and for the seconds spent in a zone; ``lines``/``zones``: what to count (as ``Model.track``), each frame's
        crossings, enters and leaves in ``Results.events``, the totals in ``session.counts``.
        """
        self._open()
        check("threshold", threshold)
        name = check_stream_name(name)
        shapes = shapes_for(name, lines, zones)
        return Session(self.backend, _topk(topk), tracker_source(tracker, threshold), name=name,
                       fps=check("fps", fps), shapes=shapes)

    def detect(self, image: np.ndarray, *, topk: int = default("topk"),
               threshold: float = default("track_thresh")) -> Results:
        """Detection alone: the image is its own previous frame and ``pre_hm`` is empty (track ids are 0)::

            >>> r = model.detect(cv2.imread("street.jpg"))
            >>> r.boxes, r.scores, r.classes
        """
        self._open()
        image = bgr_frame(image)
        if self._detector is None or self._detector[:2] != (topk, threshold):
            config = TrackerConfig.from_options(check("threshold", threshold))
            self._detector = (topk, threshold, StreamState(self.meta, _topk(topk), config))
        state = self._detector[2]
        state.reset()
        t0 = time.perf_counter()
        state.prepare(image)
        t1 = time.perf_counter()
        outputs = self.backend(state.feed())
        t2 = time.perf_counter()
        detections = state.detect({name: value[0] for name, value in outputs.items()})
        speed = {"preprocess": t1 - t0, "infer": t2 - t1, "decode": time.perf_counter() - t2}
        return Results("image", 0, image, detections, {k: v * 1e3 for k, v in speed.items()})

    def track(self, source: Sources, **options: Any) -> Run:
        """Track one source or several, batched on this model; iterate the ``Run`` for one ``Results`` per stream
        frame, in each stream's order::

            >>> with model.track(["0", "door.mp4"], save_dir="runs/site") as run:
            ...     for r in run:
            ...         print(r.stream, r.index, r.ids)
            >>> run.report.exit_status
            0

        ``source``: a camera index, video file, image folder, glob, URL or GStreamer pipeline (or an opened
        ``FrameSource``), a list of them, or a mapping of stream names to them. The options are ``ctrt run``'s, by
        the names of the options table (``ctrt/options.py``, which has each one's default, bounds and help):
        ``tracker`` (a preset, a spec such as ``"robust,gate=1"``, a ``TrackerConfig``, or a tracker class or
        factory satisfying ``ctrt.TrackerLike``), ``topk``, ``threshold``, ``drop``, ``max_frames``, ``reconnects``,
        ``overlap``; ``save_dir`` (per stream ``<name>.mp4``, ``.txt`` (MOT) and ``.jsonl``) or, for one source,
        ``save_video``/``save_mot``/``save_json``/``show``; ``segment``; ``publish`` (``mqtt://HOST[:PORT]/PREFIX``
        or ``MqttOptions``) with ``published``, ``publish_ca``, ``publish_rate``, ``publish_buffer``,
        ``publish_frames``; ``http`` (``PORT`` or ``HOST:PORT``, or ``HttpOptions``) with ``http_token_file``,
        ``stale_after``, ``http_fps``; ``systemd``; ``lines``/``zones`` (``"NAME:X1,Y1,X2,Y2"`` strings, tables or
        ``ctrt.Line``/``ctrt.Zone``: ``Results.events``, ``run.counts``). ``tracker``, ``drop``, ``save_dir``,
        ``lines`` and ``zones`` may map stream names to each stream's own. ``sinks``: the caller's own (objects
        with ``write(results)`` and ``close()``, or callables) and ``on_result``: a callable, each fed every frame
        the files get and closed with them.

        Every output is checked before the run and is complete however the run ends (its end, ``break``, an
        exception, Ctrl-C, SIGTERM); none may replace the model, a source, or a file of ``protect``.
        """
        self._open()
        return start_run(self, plan_run(source, **options))


class Site:
    """A site file as Python runs it: ``ctrt.read_site(path).track()`` runs exactly what ``ctrt run --config
    path`` runs (the model it names, every camera, the files, the broker and the HTTP endpoint)::

        >>> site = ctrt.read_site("site.toml")
        >>> with site.track() as run:
        ...     for r in run:
        ...         ...

    ``plan(**given)`` is the ``RunPlan`` (``given``: options by the table's names over the file's, as
    ``ctrt run --config`` flags are); ``track(**given)`` loads the model and runs the plan.
    """

    def __init__(self, file: SiteFile) -> None:
        self.file = file
        self.path, self.cameras = file.path, file.cameras

    def plan(self, **given: Any) -> RunPlan:
        return plan_site(self.file, **given)

    def track(self, **given: Any) -> Run:
        return run_plan(self.plan(**given))


def run_plan(plan: RunPlan) -> Run:
    """Load the model a plan names and run the plan on it; the run closes the model when it ends."""
    if plan.model is None:
        raise CtrtError("model: this plan names no model; run it with Model.track", option="model")
    plan.check_outputs()  # before the model is loaded: a refused run opens nothing
    return start_run(load(plan.model, **plan.load), plan, owns_model=True)


def read_site(path: str | Path) -> Site:
    """Read and check a site file (TOML: [model], [tracker], [outputs], [[camera]])."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise CtrtError(f"config {path!r}: give the path of a site file", option="config")
    return Site(read_site_file(Path(path)))


def _topk(k: int) -> int:
    return int(check("topk", k))
