"""A run's HTTP endpoint: Prometheus metrics, health, readiness, stream status and the annotated live view.

Routes: ``/metrics`` (Prometheus text), ``/healthz`` (some camera was tracked within ``stale_after``: the run
tracks; 503 when its loop is stuck or every camera is gone),
``/readyz`` (every camera delivered a frame within ``stale_after``: 200, else 503 naming the stale ones),
``/streams`` (JSON status), ``/streams/<camera>.mjpg`` (the annotated live view, MJPEG), ``/streams/<camera>.jpg``
(its newest picture) and ``/`` (a page tiling every camera with its numbers).

Binds to loopback unless told otherwise, and then only with a token (``CTRT_HTTP_TOKEN`` or a file), sent as
``Authorization: Bearer TOKEN`` or ``?token=TOKEN``; without it every route answers 401. The tracking thread only
counts and, while somebody watches a camera and its next picture is due (at most ``fps`` a second), keeps the
frame (each capture reads into a new array) and a copy of its tracks; annotating and JPEG encoding run on an encoder thread, each viewer on its own thread,
so a slow viewer never slows tracking.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..errors import CtrtError
from ..runtime.detections import Detections
from .http_options import HttpOptions, is_loopback, parse_bind
from .live_page import page_html
from .metrics import LATENCY_BUCKETS_S, metrics_text
from ..runtime.results import Results
from ..runtime.reports import RunReport, StreamReport

log = logging.getLogger("ctrt")
WATCH_GRACE_S = 3.0  # a page polling pictures counts as watching for this long after its last request
BOUNDARY = "ctrtframe"


@dataclass
class _Camera:
    name: str
    seen: float = 0.0  # monotonic time of its last frame
    tracks: int = 0
    wanted_until: float = 0.0  # somebody watches until then
    viewers: int = 0
    picture_due: float = 0.0
    pending: tuple[np.ndarray, Detections] | None = None  # a frame for the encoder
    jpeg: bytes = b""
    jpeg_seq: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(LATENCY_BUCKETS_S) + 1, np.int64))
    latency_sum: float = 0.0
    stage_sum: dict[str, float] = field(default_factory=dict)

    def watched(self, now: float) -> bool:
        return self.viewers > 0 or now < self.wanted_until


class LiveServer:
    """Serves one run; call it with each ``Results`` (a watcher of ``Run``)."""

    def __init__(self, options: HttpOptions, cameras: list[str], report: RunReport, publisher: Any = None) -> None:
        self.options, self.report, self.publisher = options, report, publisher
        self.token = options.secret
        self.host, self.port = parse_bind(options.bind)
        self.cameras = {name: _Camera(name) for name in cameras}
        self.loop_seen = time.monotonic()
        self.started = time.monotonic()
        self.changed = threading.Condition()
        self.closing = False
        self.server: ThreadingHTTPServer | None = None
        self.threads: list[threading.Thread] = []
        self._streams: tuple[list[StreamReport], dict[str, StreamReport]] = ([], {})

    # ------------------------------------------------------------------------------------------ tracking thread
    def __call__(self, results: Results) -> None:
        now = time.monotonic()
        self.loop_seen = now
        camera = self.cameras[results.stream]
        camera.seen, camera.tracks = now, int(results.shown.sum())
        if self._streams[0] is not self.report.streams:  # the run's reports, set when its loop starts
            self._streams = (self.report.streams, {s.name: s for s in self.report.streams})
        stream = self._streams[1].get(results.stream)
        if stream is not None and stream.latency_ms:
            latency = stream.latency_ms[-1] / 1e3
            camera.counts[np.searchsorted(LATENCY_BUCKETS_S, latency)] += 1
            camera.latency_sum += latency
        for stage, ms in results.speed_ms.items():
            camera.stage_sum[stage] = camera.stage_sum.get(stage, 0.0) + ms / 1e3
        if camera.watched(now) and now >= camera.picture_due:
            camera.picture_due = now + 1.0 / self.options.fps
            rows = np.arange(len(results.tracks))  # the tracks copied; the frame is the capture's own, new each frame
            camera.pending = (results.frame, results.tracks[rows])
            with self.changed:
                self.changed.notify_all()

    # ---------------------------------------------------------------------------------------------- threads
    def start(self) -> LiveServer:
        handler = type("Handler", (_Handler,), {"live": self})
        try:
            self.server = _Server((self.host, self.port), handler)
        except OSError as exc:
            raise CtrtError(f"http {self.options.bind}: cannot listen there ({exc.strerror or exc})",
                            option="http") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.threads = [threading.Thread(target=self.server.serve_forever, name="ctrt-http", daemon=True),
                        threading.Thread(target=self._encode, name="ctrt-jpeg", daemon=True)]
        for thread in self.threads:
            thread.start()
        return self

    def _encode(self) -> None:
        import cv2

        from ..runtime.annotate import annotate

        while not self.closing:
            with self.changed:
                self.changed.wait(0.5)
            for camera in self.cameras.values():
                pending, camera.pending = camera.pending, None
                if pending is None:
                    continue
                ok, data = cv2.imencode(".jpg", annotate(*pending), [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    camera.jpeg, camera.jpeg_seq = data.tobytes(), camera.jpeg_seq + 1
                    with self.changed:
                        self.changed.notify_all()

    def close(self) -> None:
        self.closing = True
        with self.changed:
            self.changed.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for thread in self.threads:
            thread.join(2.0)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def tick(self) -> None:
        """The tracking loop's heartbeat (frames or not): /healthz follows it."""
        self.loop_seen = time.monotonic()

    # ------------------------------------------------------------------------------------------------ routes
    def camera_states(self) -> dict[str, dict[str, Any]]:
        """Every camera asked for: its state (starting, live, stale, reconnecting, ended, failed), since when,
        seconds since its last frame, reconnects, the attempt under way and the time it has been away."""
        now = time.time()
        reports = {s.name: s for s in self.report.streams}
        states: dict[str, dict[str, Any]] = {}
        for name in self.cameras:
            s = reports.get(name)
            if s is None:  # it did not open and will not be retried (a file, or reconnects 0)
                states[name] = {"state": "failed", "since": None}
                continue
            states[name] = {"state": s.condition(self.options.stale_after, now),
                            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(s.state_since))
                            if s.state_since else None,
                            "since_epoch": round(s.state_since, 3) if s.state_since else None,
                            "seconds_since_frame": round(now - s.last_frame_at, 3) if s.last_frame_at else None,
                            "reconnects": s.reconnects, "attempt": s.attempt, "down_s": round(s.down_s, 1)}
        return states

    def stale(self) -> list[str]:
        """The cameras that are not live: /readyz answers 503 while there is one."""
        return [name for name, state in self.camera_states().items() if state["state"] != "live"]

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        streams = []
        for stream in self.report.streams:
            camera = self.cameras.get(stream.name)
            streams.append({"name": stream.name, "frames": stream.frames, "fps": round(stream.fps, 2),
                            "dropped": stream.dropped, "skipped": stream.skipped, "reconnects": stream.reconnects,
                            "tracks": camera.tracks if camera else 0, "track_ids": stream.tracks,
                            "seconds_since_frame": round(now - camera.seen, 3) if camera and camera.seen else None,
                            "latency_ms": stream.latency_percentiles(),
                            "pictures_encoded": camera.jpeg_seq if camera else 0})
        states = self.camera_states()
        return {"streams": streams, "cameras": states, "stale": [n for n, s in states.items() if s["state"] != "live"],
                "uptime_s": round(now - self.started, 1)}

    def metrics(self) -> bytes:
        return metrics_text(self.report, self.cameras, self.options.stale_after, self.publisher)

    def page(self) -> bytes:
        return page_html(list(self.cameras), self.options.fps)

    def picture(self, name: str, after: int, timeout: float) -> tuple[bytes, int]:
        """The camera's newest JPEG newer than ``after``, waiting up to ``timeout`` for one."""
        camera = self.cameras[name]
        deadline = time.monotonic() + timeout
        with self.changed:
            while camera.jpeg_seq <= after and not self.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
        return camera.jpeg, camera.jpeg_seq


class _Server(ThreadingHTTPServer):
    """The live server: IPv6 where the host is an IPv6 address, and a viewer that hangs up mid-answer is no news
    (one counted line at most, never a traceback)."""

    hung_up = 0

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            self.hung_up += 1
            if self.hung_up == 1:
                log.warning(f"http: a client hung up mid-answer ({error}); later ones are counted, not shown")
            return
        log.warning(f"http: a request failed: {type(error).__name__}: {error}")


class _Handler(BaseHTTPRequestHandler):
    live: LiveServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # access logs stay out of the run's output
        pass

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        token = self.live.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        offered = given[7:] if given.startswith("Bearer ") else (query.get("token") or [""])[0]
        return hmac.compare_digest(offered.encode(), token.encode())

    def _host_named(self) -> bool:
        """A server without a token answers only requests addressed to a loopback name, so a web page whose own
        name resolves to 127.0.0.1 (DNS rebinding) cannot read it from the user's browser."""
        if self.live.token:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):  # [::1]:PORT
            name, _, rest = host[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else rest
        else:
            name, _, port = host.partition(":")
        return is_loopback(name) and port in ("", str(self.live.port))

    def _admitted(self, query: dict[str, list[str]]) -> bool:
        """The Host names this server and the token (where one is set) is right; else the answer is sent."""
        if not self._host_named():
            self._send(421, b"this server answers requests for a loopback address only\n", "text/plain")
            return False
        if not self._authorised(query):
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Bearer")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def _not_allowed(self) -> None:
        """Every method but GET: refused (401 before the token, then 405), never the library's 501."""
        if self._admitted(parse_qs(urlsplit(self.path).query)):
            self.send_response(405)
            self.send_header("Allow", "GET")
            self.send_header("Content-Length", "0")
            self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _not_allowed

    def do_GET(self) -> None:
        live = self.live
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self._admitted(query):
            return
        path = parts.path
        now = time.monotonic()
        if path == "/metrics":
            self._send(200, live.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            alive = now - live.loop_seen <= live.options.stale_after
            self._send(200 if alive else 503, b"ok\n" if alive else b"the tracking loop is stalled\n", "text/plain")
        elif path == "/readyz":  # 503 while any camera is not live (starting, stale, reconnecting, ended, failed)
            states = live.camera_states()
            ready = all(s["state"] == "live" for s in states.values())
            self._send(200 if ready else 503, json.dumps({"ready": ready, "cameras": states}).encode(),
                       "application/json")
        elif path == "/streams":
            self._send(200, json.dumps(live.status()).encode(), "application/json")
        elif path == "/":
            self._send(200, live.page(), "text/html; charset=utf-8")
        elif path.startswith("/streams/") and path.endswith((".jpg", ".mjpg")):
            name = path[len("/streams/"):].rsplit(".", 1)[0]
            if name not in live.cameras:
                self._send(404, f"no camera {name}\n".encode(), "text/plain")
            elif path.endswith(".jpg"):
                live.cameras[name].wanted_until = now + WATCH_GRACE_S
                # A live camera's first picture is worth a short wait; one that is away answers at once.
                away = live.camera_states()[name]["state"] != "live"
                data, _ = live.picture(name, 0, 0.0 if away else 2.0)
                self._send(200 if data else 503, data or b"no picture yet\n", "image/jpeg" if data else "text/plain")
            else:
                self._mjpeg(name)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _mjpeg(self, name: str) -> None:
        live, camera = self.live, self.live.cameras[name]
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        camera.viewers += 1
        seq = 0
        try:
            while not live.closing:
                data, seq_now = live.picture(name, seq, 1.0)
                if seq_now == seq:
                    continue
                seq = seq_now
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                                 .encode() + data + b"\r\n")
        except OSError:
            pass  # the viewer left
        finally:
            camera.viewers -= 1
            self.close_connection = True
