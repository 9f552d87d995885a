"""A network camera on loopback: generated demo frames served as MJPEG over HTTP (``/video.mjpg``), as IP cameras
serve them, read by OpenCV through FFmpeg like any ``http://`` camera. ``stop()`` and ``start()`` switch it off and
on again on the same port; while off the port refuses connections and the open stream is cut."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from ctrt.demo import DemoScene

BOUNDARY = "camframe"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MjpegCamera:
    def __init__(self, fps: float = 10.0, size: tuple[int, int] = (320, 240), seed: int = 7) -> None:
        self.fps, self.scene = fps, DemoScene(size, seed=seed)
        self.port = free_port()
        self.served = 0  # frames sent, over every connection
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    while camera._server is self.server:
                        camera.served += 1
                        jpeg = cv2.imencode(".jpg", camera.scene.frame(camera.served)[0])[1].tobytes()
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                         "\r\n\r\n".encode() + jpeg + b"\r\n")
                        time.sleep(1.0 / camera.fps)
                except OSError:
                    pass  # the reader went away

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Off: no new connection is taken and the streams being served end (their handlers see another server)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        time.sleep(2.0 / self.fps)  # the handlers notice and hang up
