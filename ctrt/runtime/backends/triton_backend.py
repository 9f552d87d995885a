"""A model served by Triton Inference Server (``triton://HOST:PORT/MODEL`` over gRPC, ``http://...`` over HTTP).

The network runs on the server, the tracker stays here: each call sends the current image, the previous one and
pre_hm, like a local backend. The ctrt metadata (mean/std, size, heads, fast-path flags) comes from the model's
config on the server, written there by ``ctrt triton``. A server that goes away mid-run is waited for with back-off
and the same request is sent again, so no frame is lost or sent twice.

A stateful model (``ctrt triton --stateful``) keeps each stream's previous frame: a stream is one Triton sequence
(START on its first frame, a closing END request when the backend closes), and each frame travels once, raw or as
JPEG (``transport``), with last frame's boxes. A sequence the server lost (a restart, its idle timeout) is started
again with the frame before it, so tracking goes on exactly; ``restarts`` counts them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ...artifacts import ArtifactMeta
from ...errors import CtrtError
from ...options import attempts_left, default
from ..sources import backoff_delay

SCHEMES = {"triton": "grpc", "grpc": "grpc", "http": "http"}
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
META_PARAMETER = "ctrt_meta"  # written by ctrt.triton.repository
STATEFUL_PARAMETER = "ctrt_stateful"  # ditto, on a --stateful front model
LOST_SEQUENCE = ("must specify the START flag", "ctrt: no previous frame for sequence")  # Triton's, stateful_model's
TRANSPORTS = ("raw", "jpeg")
DEFAULT_JPEG_QUALITY = 90


def parse_transport(spec: str) -> tuple[str, int]:
    """``raw`` or ``jpeg[:QUALITY]`` (1-100, default 90) -> (kind, quality)."""
    kind, _, quality = spec.strip().lower().partition(":")
    if kind not in TRANSPORTS or (kind == "raw" and quality):
        raise CtrtError(f"transport {spec!r}: give raw or jpeg[:QUALITY] (e.g. jpeg:90)", option="transport")
    if not quality:
        return kind, DEFAULT_JPEG_QUALITY
    if not quality.isdigit() or not 1 <= int(quality) <= 100:
        raise CtrtError(f"transport {spec!r}: JPEG quality is a whole number from 1 to 100", option="transport")
    return kind, int(quality)


def parse_url(url: str) -> tuple[str, str, str]:
    """(protocol, host:port, model) of ``triton://HOST[:PORT]/MODEL``."""
    parts = urlsplit(url)
    model = parts.path.strip("/")
    if not parts.hostname or not model or "/" in model:
        raise CtrtError(f"{url}: give a server and a model, e.g. triton://127.0.0.1:8001/ctrt "
                        "(gRPC) or http://127.0.0.1:8000/ctrt")
    protocol = SCHEMES[parts.scheme.lower()]
    try:
        port = parts.port or DEFAULT_PORTS[protocol]
    except ValueError:
        raise CtrtError(f"{url}: the port is not a number from 1 to 65535") from None
    return protocol, f"{parts.hostname}:{port}", model


class TritonBackend:
    last_ms = device_bytes = run_on_device = None  # capabilities of TensorRT only

    def __init__(self, url: str, shm: bool = False, reconnects: int | str = default("reconnects"),
                 notify: Callable[[str], None] = lambda _: None, transport: str | None = None) -> None:
        self.url = url
        self.protocol, self.address, self.model = parse_url(url)
        self.transport, self.quality = parse_transport(transport or "raw")
        try:
            if self.protocol == "grpc":
                import tritonclient.grpc as client_module
            else:
                import tritonclient.http as client_module
            import tritonclient.utils as utils
        except ImportError:
            raise CtrtError(f"{url}: talking to Triton needs tritonclient: pip install 'ctrt[serve]'") from None
        self._module, self._utils = client_module, utils
        self._client = client_module.InferenceServerClient(self.address)
        self._thread_clients = threading.local()
        self.reconnects, self.notify = reconnects, notify
        self.outages = 0
        self.outage_s = 0.0
        self._check_server()
        config = self._config()
        self.meta = self._meta(config)
        self.max_batch = int(config.get("max_batch_size", 0))
        self.specs = {t["name"]: (t["data_type"].removeprefix("TYPE_"), [int(d) for d in t["dims"]])
                      for t in [*config["input"], *config["output"]]}
        self.output_names = [t["name"] for t in config["output"]]
        self.stateful = STATEFUL_PARAMETER in config.get("parameters", {})
        self._check_transport(transport, shm)
        self.restarts = 0  # sequences the server lost and this client started again
        self._sent: dict[int, tuple[str, Any]] = {}  # sequence -> (input name, value) of its last frame sent
        self._spare: dict[int, np.ndarray] = {}  # sequence -> the raw buffer its next frame is copied into
        self._senders: ThreadPoolExecutor | None = None
        shown = ", shared memory" if shm else f", stateful, {self._transport_name}" if self.stateful else ""
        self.name = f"triton ({self.protocol} {self.address}, model {self.model}{shown})"
        self.shm = shm
        self._regions: dict[str, tuple[Any, int]] = {}  # tensor -> (handle, byte size)
        if shm:
            self._register_shm()

    @property
    def client(self) -> Any:
        """The client for the calling thread. gRPC's is thread-safe; the HTTP client runs on gevent, whose
        connections belong to the thread that made them, so a thread that calls the model (the scheduler's worker)
        gets its own, dropped with the thread."""
        if self.protocol == "grpc" or threading.current_thread() is threading.main_thread():
            return self._client
        client = getattr(self._thread_clients, "client", None)
        if client is None:
            client = self._thread_clients.client = self._module.InferenceServerClient(self.address)
        return client

    # -- connecting ------------------------------------------------------------------------------------------------
    def _check_server(self) -> None:
        try:
            live = self.client.is_server_live()
        except Exception as exc:  # grpc/gevent raise their own connection errors
            raise CtrtError(f"cannot reach Triton at {self.url}: {self._reason(exc)}") from None
        if not live:
            raise CtrtError(f"Triton at {self.url} is not live")
        if not self.client.is_model_ready(self.model):
            index = self._index()
            ready = sorted(m["name"] for m in index if m.get("state") == "READY")
            raise CtrtError(f"model {self.model!r} is not loaded on {self.address}; loaded: "
                            f"{', '.join(ready) or 'none'}")

    def _index(self) -> list[dict[str, Any]]:
        if self.protocol == "grpc":
            return list(self.client.get_model_repository_index(as_json=True).get("models", []))
        return list(self.client.get_model_repository_index())

    def _config(self) -> dict[str, Any]:
        if self.protocol == "grpc":
            return dict(self.client.get_model_config(self.model, as_json=True)["config"])
        return dict(self.client.get_model_config(self.model))

    def _meta(self, config: dict[str, Any]) -> ArtifactMeta:
        text = config.get("parameters", {}).get(META_PARAMETER, {}).get("string_value")
        if not text:
            raise CtrtError(f"model {self.model!r} on {self.address} carries no ctrt metadata; serve a repository "
                            "written by ctrt triton")
        return ArtifactMeta.from_json(text, f"{self.url} (config parameter {META_PARAMETER})")

    @staticmethod
    def _reason(exc: Exception) -> str:
        text = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
        return (text or type(exc).__name__).strip().splitlines()[0][:200]

    @property
    def _transport_name(self) -> str:
        return f"jpeg:{self.quality}" if self.transport == "jpeg" else "raw frames"

    def _check_transport(self, transport: str | None, shm: bool) -> None:
        if not self.stateful:
            if self.transport == "jpeg":
                raise CtrtError(f"transport {transport}: model {self.model!r} on {self.address} cannot decode JPEG "
                                "frames; serve a repository written by ctrt triton --stateful", option="transport")
            return
        if shm:
            raise CtrtError(f"shm: model {self.model!r} is stateful, its frames travel once already; drop shm "
                            "(it is for a client on the server's host and a model without --stateful)", option="shm")
        # What this client feeds a stateful model, in place of the network's own inputs.
        self.meta = replace(self.meta, inputs=["frame", *(["pre_boxes"] if "pre_hm" in self.meta.inputs else []),
                                               "sequence"])

    # -- shared memory ---------------------------------------------------------------------------------------------
    def _rows(self) -> int:
        return self.max_batch or 1

    def _region(self, tensor: str) -> str:
        """This client's shared-memory region for ``tensor``: unique per process and backend."""
        return f"ctrt_{os.getpid()}_{id(self)}_{tensor}"

    def _register_shm(self) -> None:
        """One system shared-memory region per tensor, sized for the largest batch; the server maps them."""
        import tritonclient.utils.shared_memory as shm

        if not self._regions:
            for name, (dtype, dims) in self.specs.items():
                size = int(np.prod(dims)) * self._rows() * np.dtype(self._utils.triton_to_np_dtype(dtype)).itemsize
                region = self._region(name)
                self._regions[name] = (shm.create_shared_memory_region(region, "/" + region, size), size)
        for name, (_, size) in self._regions.items():
            region = self._region(name)
            try:
                self.client.unregister_system_shared_memory(region)  # after a server restart it knows none
            except Exception:  # noqa: BLE001 - not registered yet is the usual case
                pass
            try:
                self.client.register_system_shared_memory(region, "/" + region, size)
            except Exception as exc:  # a remote server cannot map this machine's memory
                self._close_shm()
                raise CtrtError(f"--shm: Triton at {self.address} cannot use this machine's shared memory "
                                f"({self._reason(exc)}); run the client on the server's host or drop --shm") from None

    def _close_shm(self) -> None:
        import tritonclient.utils.shared_memory as shm

        for name, (handle, _) in self._regions.items():
            try:
                self.client.unregister_system_shared_memory(self._region(name))
            except Exception:  # noqa: BLE001 - the server may be gone; the local region goes regardless
                pass
            shm.destroy_shared_memory_region(handle)
        self._regions = {}

    # -- inference -------------------------------------------------------------------------------------------------
    def _request(self, feed: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
        import tritonclient.utils.shared_memory as shm

        inputs, outputs = [], []
        for name, array in feed.items():
            dtype = self._utils.np_to_triton_dtype(array.dtype)
            tensor = self._module.InferInput(name, list(array.shape), dtype)
            if self.shm:
                handle, _ = self._regions[name]
                shm.set_shared_memory_region(handle, [np.ascontiguousarray(array)])
                tensor.set_shared_memory(self._region(name), array.nbytes)
            else:
                tensor.set_data_from_numpy(np.ascontiguousarray(array))
            inputs.append(tensor)
        for name in self.output_names:
            wanted = self._module.InferRequestedOutput(name)
            if self.shm:
                wanted.set_shared_memory(self._region(name), self._regions[name][1])
            outputs.append(wanted)
        return inputs, outputs

    def _outputs(self, result: Any) -> dict[str, np.ndarray]:
        if not self.shm:
            return {name: result.as_numpy(name) for name in self.output_names}
        import tritonclient.utils.shared_memory as shm

        arrays = {}
        for name in self.output_names:
            described = result.get_output(name)
            shape = described["shape"] if isinstance(described, dict) else described.shape
            dtype = self._utils.triton_to_np_dtype(self.specs[name][0])
            arrays[name] = shm.get_contents_as_numpy(self._regions[name][0], dtype, [int(d) for d in shape])
        return arrays

    def _server_ready(self) -> bool:
        try:
            return bool(self.client.is_server_ready() and self.client.is_model_ready(self.model))
        except Exception:  # noqa: BLE001 - unreachable is an answer here
            return False

    def _wait_for_server(self, reason: str) -> None:
        """Back-off until the server and model are ready again; its state (shared memory) is registered anew."""
        start = time.perf_counter()
        self.outages += 1
        attempt = 0
        while attempts_left(self.reconnects, attempt):
            delay = backoff_delay(attempt)
            attempt += 1
            self.notify(f"Triton at {self.url} unreachable ({reason}); retrying ({attempt}/{self.reconnects}) "
                        f"in {delay:.1f} s")
            time.sleep(delay)
            if self._server_ready():
                if self.shm:
                    self._register_shm()
                gap = time.perf_counter() - start
                self.outage_s += gap
                self.notify(f"Triton at {self.url} is back after {gap:.1f} s; the waiting frame is sent again")
                return
        raise CtrtError(f"Triton at {self.url} did not come back after {self.reconnects} attempts ({reason})")

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        refused = False
        while True:
            inputs, outputs = self._request(feed)
            try:
                return self._outputs(self.client.infer(self.model, inputs, outputs=outputs))
            except Exception as exc:  # tritonclient's InferenceServerException, or the transport's own errors
                reason = self._reason(exc)
                if not self._server_ready():
                    self._wait_for_server(reason)
                elif refused:  # refused twice by a server that is up: the request itself is wrong
                    raise CtrtError(f"Triton at {self.url} failed the request: {reason}") from None
                else:  # up again already (a restart between the call and the check): send it once more
                    refused = True
                    if self.shm:
                        self._register_shm()

    # -- stateful: one sequence per stream ----------------------------------------------------------------------
    def _frame_input(self, sequence: int, frame: np.ndarray) -> tuple[str, Any]:
        if self.transport == "raw":
            # Kept for a restart (the caller's buffer is reused next frame): two buffers per stream, swapped.
            buffer = self._spare.pop(sequence, None)
            if buffer is None or buffer.shape[1:] != frame.shape:
                buffer = np.empty((1, *frame.shape), frame.dtype)
            np.copyto(buffer[0], frame)
            return "frame", buffer
        import cv2

        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise CtrtError("OpenCV could not encode a frame as JPEG")
        return "frame_jpeg", np.array([[data.tobytes()]], dtype=np.object_)

    def _infer_sequence(self, sequence: int, frame: np.ndarray, boxes: np.ndarray | None) -> dict[str, np.ndarray]:
        """One stream's frame as one request of its sequence, started again (with the frame before) when lost."""
        name, value = self._frame_input(sequence, frame)
        feed = {name: value, **({"pre_boxes": boxes[None]} if boxes is not None else {})}
        start = sequence not in self._sent
        refused = False
        while True:
            previous = self._sent.get(sequence) if start else None
            sent = {**feed, **({"pre_" + previous[0]: previous[1]} if previous else {})}
            inputs, outputs = self._request(sent)
            try:
                result = self.client.infer(self.model, inputs, outputs=outputs, sequence_id=sequence,
                                           sequence_start=start)
            except Exception as exc:  # tritonclient's InferenceServerException, or the transport's own errors
                reason = self._reason(exc)
                if any(text in reason for text in LOST_SEQUENCE) and not start:
                    self.restarts += 1
                    self.notify(f"Triton at {self.url} lost stream sequence {sequence} ({reason}); starting it "
                                f"again with its previous frame (restart {self.restarts})")
                    start = True
                elif not self._server_ready():
                    self._wait_for_server(reason)
                elif refused:
                    raise CtrtError(f"Triton at {self.url} failed the request: {reason}") from None
                else:
                    refused = True
                continue
            replaced = self._sent.get(sequence)
            self._sent[sequence] = (name, value)
            if replaced is not None and replaced[0] == "frame":
                self._spare[sequence] = replaced[1]
            return self._outputs(result)

    def _call_sequences(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each row is one stream: its requests go out at once (JPEG encoding in parallel too), and the server's
        sequence batcher batches them again."""
        rows = len(feed["sequence"])
        boxes = feed.get("pre_boxes")

        def row(i: int) -> dict[str, np.ndarray]:
            return self._infer_sequence(int(feed["sequence"][i]), feed["frame"][i],
                                        boxes[i] if boxes is not None else None)

        if rows == 1:
            parts = [row(0)]
        else:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ctrt-triton")
            parts = list(self._senders.map(row, range(rows)))
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def _end_sequences(self) -> None:
        """A closing request (END, no frame) per stream, so the server frees its state now rather than at the idle
        timeout. A server gone by now has lost the sequences anyway."""
        for sequence in self._sent:
            try:
                self.client.infer(self.model, [], sequence_id=sequence, sequence_end=True)
            except Exception:  # noqa: BLE001 - best effort by design
                pass
        self._sent, self._spare = {}, {}

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.stateful:
            return self._call_sequences(feed)
        rows = len(next(iter(feed.values())))
        if not self.max_batch or rows <= self.max_batch:
            return self._infer(feed)
        # More streams than the server's max_batch_size: several requests, the outputs joined back in order.
        parts = [self._infer({k: v[i : i + self.max_batch] for k, v in feed.items()})
                 for i in range(0, rows, self.max_batch)]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}

    def __enter__(self) -> TritonBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._senders is not None:
            self._senders.shutdown(wait=True)
        if self._sent:
            self._end_sequences()
        if self._regions:
            self._close_shm()
        self._client.close()
