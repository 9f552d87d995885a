"""Tracks to an MQTT broker (paho-mqtt): per camera lifecycle events (``PREFIX/<camera>/events``), optionally each
frame's tracks (``PREFIX/<camera>/frames``), and ``PREFIX/status`` (``online``, retained; ``offline`` as the last
will and on a clean stop). Schemas: ``ctrt/site/events.py``. QoS 1.

The tracking thread only hands each frame's tracks over (``PublishSink.write``: a copy and an append). A publisher
thread turns them into messages and keeps them in a bounded outbox (``buffer`` messages; when full the oldest is
dropped and counted), passing them to paho in order, at most ``WINDOW`` unacknowledged, while connected. paho keeps
those across a reconnect and sends them again (a consumer drops duplicates by ``seq``). While the broker is away
paho reconnects with back-off (1 s doubling to 30 s). When the run ends, however it ends, every held track gets its
``end`` and the outbox is flushed for up to ``flush_s`` seconds; what was not acknowledged by then is reported.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import CtrtError
from ..inputs import regular_file
from ..options import check, default
from ..runtime.reports import RunReport
from ..runtime.results import Results
from .events import TrackEvents

log = logging.getLogger("ctrt")
WINDOW = 100  # messages handed to paho and not yet acknowledged
AWAY = ("reconnecting", "failed")  # a camera in these states has no track left
CONNECT_WAIT_S = 5.0  # how long the start waits for the broker's answer (a refusal is an error then)
MAX_PREFIX_BYTES = 1024  # a topic prefix; MQTT's topics end at 65535 bytes, camera name and topic included
CA_LIMIT = 4 << 20  # a CA bundle (the system's is ~200 KiB)


@dataclass(frozen=True)
class MqttOptions:
    """Where and how to publish; ``user``/``password`` default to ``CTRT_MQTT_USER``/``CTRT_MQTT_PASSWORD``."""

    url: str
    ca: Path | None = None
    rate_hz: float = default("publish_rate")
    buffer: int = default("publish_buffer")
    frames: bool = default("publish_frames")
    user: str | None = None
    password: str | None = None
    flush_s: float = 5.0

    def __post_init__(self) -> None:
        for name, value in (("publish", self.url), ("publish_rate", self.rate_hz), ("publish_buffer", self.buffer),
                            ("publish_frames", self.frames)):
            check(name, value)
        broker = parse_broker(self.url)
        if self.ca is not None:
            if not broker.tls:
                raise CtrtError(f"publish_ca {self.ca}: a CA is for a TLS broker; give an mqtts:// URL",
                                option="publish_ca")
            regular_file(self.ca, "publish_ca", CA_LIMIT)
            try:
                ssl.create_default_context(cafile=str(self.ca))
            except (ssl.SSLError, ValueError) as exc:
                raise CtrtError(f"publish_ca {self.ca}: not a PEM CA certificate ({getattr(exc, 'reason', None) or exc})",
                                option="publish_ca") from None


@dataclass(frozen=True)
class Broker:
    tls: bool
    host: str
    port: int
    prefix: str


def parse_broker(url: str) -> Broker:
    """``mqtt://HOST[:PORT]/PREFIX`` or ``mqtts://...``; credentials never in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise CtrtError(f"publish {url!r}: give mqtt://HOST[:PORT]/PREFIX or mqtts://HOST[:PORT]/PREFIX",
                        option="publish")
    if parts.username or parts.password:
        raise CtrtError(f"publish {url!r}: no credentials in the URL; set CTRT_MQTT_USER and CTRT_MQTT_PASSWORD "
                        "(or publish_user and publish_password_file in the site file)", option="publish")
    try:
        port = parts.port if parts.port is not None else (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise CtrtError(f"publish {url!r}: the port is not a number from 1 to 65535", option="publish")
    prefix = parts.path.strip("/") or "ctrt"
    if "#" in url or "+" in prefix:  # urlsplit reads '#' as a fragment
        raise CtrtError(f"publish {url!r}: the topic prefix may not hold MQTT wildcards (# +)", option="publish")
    if any(ord(ch) < 32 for ch in prefix):
        raise CtrtError(f"publish {url!r}: the topic prefix may not hold control characters", option="publish")
    if len(prefix.encode()) > MAX_PREFIX_BYTES:
        raise CtrtError(f"publish {url[:60]!r}...: the topic prefix is {len(prefix.encode())} bytes; at most "
                        f"{MAX_PREFIX_BYTES} leave room for the camera and the topic in MQTT's 65535", option="publish")
    return Broker(parts.scheme == "mqtts", parts.hostname, port, prefix)


@dataclass
class PublishReport:
    url: str
    sent: int = 0  # acknowledged by the broker
    dropped: int = 0  # the oldest, pushed out of a full outbox
    unsent: int = 0  # still queued or unacknowledged when the run ended
    reconnects: int = 0
    error: str = ""  # why the publisher stopped before the run's end

    def text(self) -> str:
        return (f"published {self.sent} messages to {self.url}" + (f", {self.dropped} dropped (buffer full)"
                                                                  if self.dropped else "")
                + (f", stopped early ({self.error})" if self.error else "")
                + (f", {self.unsent} not sent when the run ended" if self.unsent else "")
                + (f", {self.reconnects} reconnects" if self.reconnects else ""))


class MqttPublisher:
    """One connection for every camera of a run; ``sink(camera)`` gives each camera's sink."""

    def __init__(self, options: MqttOptions, notify: Callable[[str], None] = log.warning) -> None:
        self.options, self.notify = options, notify
        self.broker = parse_broker(options.url)
        self.report = PublishReport(options.url)
        # Frames and camera states in the order the tracking thread saw them (a state is a dict).
        self._frames: deque[tuple[str, Results | dict[str, Any] | None, float]] = deque()
        self._outbox: deque[tuple[str, str, bool]] = deque()  # topic, payload, retained
        self._states: dict[str, str] = {}  # each camera's last state published
        self._inflight: deque[Any] = deque()
        self._events: dict[str, TrackEvents] = {}
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refused: str | None = None
        self._closing = False
        self._client: Any = None
        self._thread = threading.Thread(target=self._work, name="ctrt-mqtt", daemon=True)

    # ---------------------------------------------------------------------------------------- tracking thread
    def sink(self, camera: str) -> PublishSink:
        self._events[camera] = TrackEvents(camera, self.options.rate_hz, self.options.frames)
        return PublishSink(self, camera)

    def offer(self, camera: str, results: Results | None) -> None:
        """Hand a frame's tracks over (None: the camera ended). Never waits."""
        self._frames.append((camera, results, time.time()))
        self._wake.set()

    def tick(self, report: RunReport, stale_after: float) -> None:
        """The tracking loop's heartbeat: a camera whose state changed gets its retained ``PREFIX/<camera>/status``;
        one that went away has its tracks ended now, not when it comes back."""
        now = time.time()
        for stream in report.streams:
            state = stream.condition(stale_after, now)
            if self._states.get(stream.name) != state and stream.name in self._events:
                self._states[stream.name] = state
                self._frames.append((stream.name, {"schema": "ctrt.camera/1", "camera": stream.name, "state": state,
                                                   "since": stream.state_since, "reconnects": stream.reconnects,
                                                   "attempt": stream.attempt}, now))
                self._wake.set()

    # ------------------------------------------------------------------------------------------- connection
    def start(self) -> MqttPublisher:
        """Connect; a broker that refuses us (credentials) or a certificate we cannot trust is an error now, a
        broker that is not there a warning (the run goes on and publishes once it connects)."""
        import paho.mqtt.client as mqtt

        options, broker = self.options, self.broker
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ctrt-{socket.gethostname()}-{os.getpid()}")
        user = options.user or os.environ.get("CTRT_MQTT_USER")
        password = options.password or os.environ.get("CTRT_MQTT_PASSWORD")
        if user:
            client.username_pw_set(user, password)
        if broker.tls:
            client.tls_set(ca_certs=str(options.ca) if options.ca else None)
        client.will_set(f"{broker.prefix}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.max_inflight_messages_set(WINDOW)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client
        where = f"{broker.host}:{broker.port}"
        try:
            client.connect(broker.host, broker.port, keepalive=30)
        except ssl.SSLCertVerificationError as exc:
            raise CtrtError(f"publish {options.url}: the broker's certificate is not trusted ({exc.verify_message}); "
                            "give its CA with publish_ca", option="publish") from None
        except OSError as exc:
            if broker.tls and isinstance(exc, (ssl.SSLError, ConnectionResetError, ConnectionAbortedError,
                                               BrokenPipeError)):  # a plain MQTT port hangs up on a TLS handshake
                raise CtrtError(f"publish {options.url}: TLS failed ({getattr(exc, 'reason', None) or exc}); is "
                                f"{where} a plain MQTT port? then give mqtt://", option="publish") from None
            self.notify(f"MQTT broker {where} is not reachable ({exc.strerror or exc}); tracking goes on and "
                        "publishes once it connects")
            client.connect_async(broker.host, broker.port, keepalive=30)
            reachable = False
        else:
            reachable = True
        client.loop_start()
        answered = self._answered.wait(CONNECT_WAIT_S)
        if reachable and not answered:  # a listener that is not an MQTT broker of this scheme
            self.notify(f"MQTT: {where} took the connection but gave no MQTT answer in {CONNECT_WAIT_S:.0f} s"
                        + ("; is it a TLS port? then give mqtts://" if not broker.tls else "")
                        + "; tracking goes on and publishes once the broker answers")
        if answered and self._refused:
            client.loop_stop()
            raise CtrtError(f"publish {options.url}: the broker refused the connection ({self._refused}); check "
                            "CTRT_MQTT_USER and CTRT_MQTT_PASSWORD", option="publish")
        self._thread.start()
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if not self._answered.is_set():
                self._refused = str(reason)
            else:
                self.notify(f"MQTT broker refused the connection: {reason}")
            self._answered.set()
            return
        client.publish(f"{self.broker.prefix}/status", "online", qos=1, retain=True)
        self._connected.set()
        self._answered.set()
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set() and not self._closing:
            self.report.reconnects += 1
        self._connected.clear()

    # --------------------------------------------------------------------------------------- publisher thread
    def _queue(self, messages: list[tuple[str, str]], camera: str, retained: bool = False) -> None:
        prefix = self.broker.prefix
        for topic, payload in messages:
            if len(self._outbox) >= self.options.buffer:
                self._outbox.popleft()
                self.report.dropped += 1
            self._outbox.append((f"{prefix}/{camera}/{topic}", payload, retained))

    def _convert(self) -> None:
        while self._frames:
            camera, item, now = self._frames.popleft()
            events = self._events[camera]
            if isinstance(item, dict):  # a camera state
                if item["state"] in AWAY:
                    self._queue(events.end_all(now, away=True), camera)
                self._queue([("status", json.dumps(item))], camera, retained=True)
            else:
                self._queue(events.update(item, now) if item is not None else events.end_all(now), camera)

    def _pump(self) -> None:
        while self._inflight and self._inflight[0].is_published():
            self._inflight.popleft()
            self.report.sent += 1
        while self._connected.is_set() and self._outbox and len(self._inflight) < WINDOW:
            topic, payload, retained = self._outbox.popleft()
            self._inflight.append(self._client.publish(topic, payload, qos=1, retain=retained))

    def _work(self) -> None:
        try:
            self._publish_until_closed()
        except Exception as exc:  # the run goes on without its broker, and says so once
            self.report.error = f"{type(exc).__name__}: {exc}"
            self.notify(f"MQTT publisher stopped ({self.report.error}); nothing more is published this run")

    def _publish_until_closed(self) -> None:
        while not self._closing:
            self._wake.wait(0.05)
            self._wake.clear()
            self._convert()
            self._pump()
        self._convert()
        for camera, events in self._events.items():
            self._queue(events.end_all(time.time()), camera)
        deadline = time.monotonic() + self.options.flush_s
        while (self._outbox or self._inflight) and time.monotonic() < deadline:
            self._pump()
            time.sleep(0.005)
        self.report.unsent = len(self._outbox) + sum(not info.is_published() for info in self._inflight)
        self.report.sent += sum(info.is_published() for info in self._inflight)

    def close(self) -> PublishReport:
        """End every track, flush for up to ``flush_s``, say ``offline`` and disconnect."""
        if self._client is None:
            return self.report
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._connected.is_set():
            self._client.publish(f"{self.broker.prefix}/status", "offline", qos=1, retain=True).wait_for_publish(1.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None
        return self.report

    @property
    def queued(self) -> int:
        return len(self._outbox) + len(self._inflight)


class PublishSink:
    """A camera's tracks to the publisher; no file, nothing that waits."""

    paths: list[Path] = []

    def __init__(self, publisher: MqttPublisher, camera: str) -> None:
        self.publisher, self.camera = publisher, camera

    def write(self, results: Results) -> None:
        rows = np.arange(len(results.tracks))  # a copy: the tracker goes on with its arrays
        self.publisher.offer(self.camera, Results(results.stream, results.index, _NO_FRAME, results.tracks[rows],
                                                  events=results.events))

    def close(self) -> None:
        self.publisher.offer(self.camera, None)


_NO_FRAME = np.zeros((0, 0, 3), np.uint8)
