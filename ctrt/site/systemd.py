"""systemd: readiness, watchdog and status over ``$NOTIFY_SOCKET``, and the unit that runs a site.

When ``NOTIFY_SOCKET`` is set (``Type=notify``), a run sends ``READY=1`` once every camera has delivered a frame,
``WATCHDOG=1`` from the tracking loop (at half of ``WATCHDOG_USEC``, so a loop that stops yielding frames is
restarted), ``STATUS=`` with the frame rate every few seconds, and ``STOPPING=1`` when it ends.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import CtrtError
from ..runtime.reports import RunReport
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
    """Follows a run and tells systemd: ready (every camera tracked or known to be away), alive (the loop's
    heartbeat, also while every camera is away), each camera's state; stopping at the end."""

    def __init__(self, notifier: SystemdNotifier, report: RunReport, stale_after: float) -> None:
        self.notifier, self.report, self.stale_after = notifier, report, stale_after
        self.ready = False
        self.status_at = self.pinged = time.monotonic()
        self.frames = 0

    def __call__(self, results: Results) -> None:
        self.frames += 1
        if not self.ready:
            self.tick()

    def tick(self) -> None:
        """From the tracking loop (a frame, or its heartbeat)."""
        now = time.monotonic()
        if not self.ready and self.report.streams and all(s.frames or s.state in ("reconnecting", "failed")
                                                          for s in self.report.streams):
            self.ready = True
            self.notifier.send("READY=1", f"STATUS={self.status()}")
            self.status_at = now
        watchdog = self.notifier.watchdog_s
        if watchdog is not None and now - self.pinged >= watchdog:
            self.notifier.send("WATCHDOG=1")
            self.pinged = now
        if self.ready and now - self.status_at >= STATUS_EVERY_S:
            self.notifier.send(f"STATUS={self.status()}")
            self.status_at = now

    def status(self) -> str:
        """``3/4 cameras live; yard reconnecting, attempt 7``."""
        streams = self.report.streams
        states = [(s, s.condition(self.stale_after)) for s in streams]
        live = sum(state == "live" for _, state in states)
        away = [f"{s.name} {state}" + (f", attempt {s.attempt}" if state == "reconnecting" and s.attempt else "")
                for s, state in states if state != "live"]
        return f"{live}/{len(streams)} cameras live" + ("; " + "; ".join(away) if away else "") + \
            f"; {self.frames} frames"

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=finishing the outputs")
        self.notifier.close()


# The account a site runs as by default (docs/service.md: how to create it), and the groups that
# open cameras (video) and GPUs through the DRM render nodes (render).
SERVICE_USER = "ctrt"
DEVICE_GROUPS = "video render"
# Devices a site may open, by /proc/devices group (fnmatch): V4L2 cameras, NVIDIA GPUs (nvidia, nvidiactl, uvm,
# caps), DRM render nodes, and a Jetson's Tegra nodes (nvhost-*, nvmap, nvgpu).
DEVICES = ("char-video4linux", "char-nvidia*", "char-drm", "char-nvhost*", "char-nvmap", "char-nvgpu*")
HARDENING = (
    "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes",
    "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes",
    "ProtectClock=yes", "ProtectHostname=yes", "ProtectProc=invisible", "RestrictNamespaces=yes",
    "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes", "RemoveIPC=yes",
    "CapabilityBoundingSet=", "AmbientCapabilities=", "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources", "SystemCallErrorNumber=EPERM",
    # Brokers and viewers over IP; systemd's notify socket and RTSP/GStreamer helpers over Unix sockets.
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "UMask=0027", "DevicePolicy=closed",
)


def unit_text(value: str, what: str) -> str:
    """``value`` as a unit file line may hold it: systemd's specifiers (``%``) doubled; a line break, another
    control character or a trailing backslash (a continued line) refused, as each would change the unit."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value) or value.endswith("\\"):
        raise CtrtError(f"{what} {value!r}: a systemd unit cannot hold a line break, a control character or a "
                        "trailing backslash; rename it", option=what)
    return value.replace("%", "%%")


def quoted(value: str, what: str, expands: bool = False) -> str:
    """One word of a setting that takes several (``ExecStart=``'s arguments, ``ReadWritePaths=``), double-quoted as
    systemd.syntax reads it: ``\\`` and ``\"`` escaped, ``%`` not a specifier, and where the setting ``expands``
    environment variables (``ExecStart=``'s arguments after the first), ``$`` not one."""
    text = unit_text(value, what).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + (text.replace("$", "$$") if expands else text) + '"'


def service_unit(config: Path, watchdog_s: int = 30, stop_timeout_s: int = 60, user: str = SERVICE_USER,
                 writable: list[Path] | None = None) -> str:
    """A hardened ``Type=notify`` unit running ``ctrt run --config CONFIG`` as ``user``: the file system read-only
    but for ``writable`` (the site's output folders), no privileges, the devices cameras and GPUs need and no
    others. The stop timeout covers closing the videos, flushing MQTT (5 s) and the last frames in flight;
    systemd's SIGKILL after it would cut a video short."""
    config = config.resolve()
    ctrt = Path(sys.executable).with_name("ctrt")
    if not user or not all(ch.isalnum() or ch in "-_." for ch in user) or user[0] == "-":
        raise CtrtError(f"user {user!r}: give a user name (letters, digits, '-', '_', '.')", option="user")
    args = " ".join([quoted(str(ctrt), "executable"), *(quoted(a, "config", expands=True)
                                                         for a in ("run", "--config", str(config)))])
    lines = [
        "[Unit]", f"Description=ctrt tracking ({unit_text(config.name, 'config')})",
        "Wants=network-online.target", "After=network-online.target", "",
        "[Service]", "Type=notify", "NotifyAccess=main", f"ExecStart={args}",
        f"WorkingDirectory={unit_text(str(config.parent), 'config')}",
        "# CTRT_MQTT_USER, CTRT_MQTT_PASSWORD, CTRT_HTTP_TOKEN: secrets stay out of the unit",
        "EnvironmentFile=-/etc/ctrt/ctrt.env", "Environment=PYTHONUNBUFFERED=1",
        f"User={user}", f"SupplementaryGroups={DEVICE_GROUPS}",
        f"WatchdogSec={watchdog_s}", "Restart=on-failure", "RestartSec=5", "KillSignal=SIGTERM",
        "# ctrt exits 128 + the signal once its outputs are complete: a stop, not a failure",
        "SuccessExitStatus=143",
        f"TimeoutStopSec={stop_timeout_s}",
        "# Hardening: read-only everywhere but the output folders; cameras and GPUs, no other device",
        *HARDENING,
        *(f"ReadWritePaths={quoted('-' + str(folder.resolve()), 'save_dir')}" for folder in writable or []),
        *(f"DeviceAllow={device} rw" for device in DEVICES), "",
        "[Install]", "WantedBy=multi-user.target", "",
    ]
    return "\n".join(lines)
