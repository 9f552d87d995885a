"""systemd: readiness, watchdog and status over ``$NOTIFY_SOCKET``, and the unit that runs a site.

When ``NOTIFY_SOCKET`` is set (``Type=notify``), a run sends ``READY=1`` once every camera has delivered a frame,
``WATCHDOG=1`` from the tracking loop (at half of ``WATCHDOG_USEC``, so a loop that stops yielding frames is
restarted), ``STATUS=`` with the frame rate every few seconds, and ``STOPPING=1`` when it ends.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ..runtime.results import Results

STATUS_EVERY_S = 5.0


class SystemdNotifier:
    """``sd_notify`` without libsystemd: one datagram per message (``@`` names the abstract namespace)."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.socket: socket.socket | None = None
        if self.address:
            self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.socket.setblocking(False)  # a listener that does not read never stalls the tracking loop
        watchdog = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s = int(watchdog) / 2e6 if watchdog.isdigit() and int(watchdog) > 0 and mine else None

    @property
    def enabled(self) -> bool:
        return self.socket is not None

    def send(self, *fields: str) -> None:
        if self.socket is not None:
            try:
                self.socket.sendto("\n".join(fields).encode(), self.address)
            except OSError:
                pass  # systemd gone or its queue full: notifications are advisory, tracking goes on

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


class ServiceWatch:
    """Follows a run's ``Results`` and tells systemd: ready, alive, how fast; stopping at the end."""

    def __init__(self, notifier: SystemdNotifier, cameras: list[str]) -> None:
        self.notifier = notifier
        self.waiting = set(cameras)
        self.cameras = len(cameras)
        self.frames = 0
        self.start = self.status_at = self.pinged = time.monotonic()

    def __call__(self, results: Results) -> None:
        self.frames += 1
        now = time.monotonic()
        if self.waiting:
            self.waiting.discard(results.stream)
            if not self.waiting:
                self.notifier.send("READY=1", f"STATUS=tracking {self.cameras} cameras")
        watchdog = self.notifier.watchdog_s
        if watchdog is not None and now - self.pinged >= watchdog:
            self.notifier.send("WATCHDOG=1")
            self.pinged = now
        if now - self.status_at >= STATUS_EVERY_S:
            fps = self.frames / max(now - self.start, 1e-9)
            self.notifier.send(f"STATUS=tracking {self.cameras} cameras, {fps:.1f} FPS in all, {self.frames} frames")
            self.status_at = now

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=finishing the outputs")
        self.notifier.close()


def service_unit(config: Path, watchdog_s: int = 30, stop_timeout_s: int = 60, user: str | None = None) -> str:
    """A ``Type=notify`` unit running ``ctrt run --config CONFIG``. The stop timeout covers closing the videos,
    flushing MQTT (5 s) and the last frames in flight; systemd's SIGKILL after it would cut a video short."""
    config = config.resolve()
    ctrt = Path(sys.executable).with_name("ctrt")
    lines = [
        "[Unit]", f"Description=ctrt tracking ({config.name})", "Wants=network-online.target",
        "After=network-online.target", "",
        "[Service]", "Type=notify", "NotifyAccess=main",
        f"ExecStart={shlex.quote(str(ctrt))} run --config {shlex.quote(str(config))}",
        f"WorkingDirectory={shlex.quote(str(config.parent))}",
        "# CTRT_MQTT_USER, CTRT_MQTT_PASSWORD, CTRT_HTTP_TOKEN: secrets stay out of the unit",
        "EnvironmentFile=-/etc/ctrt/ctrt.env", "Environment=PYTHONUNBUFFERED=1",
        *([f"User={user}"] if user else []),
        f"WatchdogSec={watchdog_s}", "Restart=on-failure", "RestartSec=5", "KillSignal=SIGTERM",
        "# ctrt exits 128 + the signal once its outputs are complete: a stop, not a failure",
        "SuccessExitStatus=143",
        f"TimeoutStopSec={stop_timeout_s}", "",
        "[Install]", "WantedBy=multi-user.target", "",
    ]
    return "\n".join(lines)
