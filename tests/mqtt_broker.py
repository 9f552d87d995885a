"""A real Mosquitto for the tests: loopback listeners on free ports (plain and TLS on a CA made here), a password
file, persistence so a restarted broker keeps a subscriber's session; always stopped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

USER, PASSWORD = "camera-site", "s3cret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A CA and a server certificate it signed for 127.0.0.1 (openssl)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / f"{name}-ca.key", folder / f"{name}-ca.crt"
    key, csr, crt = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    run = lambda *args: subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "1",
        "-subj", f"/CN={name} test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-out", crt, "-days", "1",
        "-extfile", ext)
    return ca_crt, crt


class Broker:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.tls_port = free_port(), free_port()
        self.ca, crt = make_ca(folder / "tls", "broker")
        passwords = folder / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD], check=True,
                       capture_output=True)
        (folder / "data").mkdir(exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join([
            "per_listener_settings false", "allow_anonymous false", f"password_file {passwords}",
            "persistence true", f"persistence_location {folder / 'data'}/", "autosave_interval 1",
            *(["user root"] if os.geteuid() == 0 else []),
            f"listener {self.port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1", f"cafile {self.ca}", f"certfile {crt}",
            f"keyfile {folder / 'tls' / 'broker.key'}", ""]))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=(self.folder / "mosquitto.log").open("ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {(self.folder / 'mosquitto.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.process.wait(10)
            self.process = None


class Subscriber:
    """Collects every message under ``prefix/#`` with a persistent QoS 1 session (it survives a broker restart)."""

    def __init__(self, broker: Broker, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict | str]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{prefix}",
                                  clean_session=False)
        self.client.username_pw_set(USER, PASSWORD)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, u, f, rc, p: (c.subscribe(f"{prefix}/#", qos=1), self.ready.set())
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _message(self, client, userdata, message) -> None:
        text = message.payload.decode()
        with self.lock:
            self.messages.append((message.topic, json.loads(text) if text.startswith("{") else text))

    def events(self, camera: str | None = None) -> list[dict]:
        with self.lock:
            return [m for t, m in self.messages if t.endswith("/events") and (camera is None or m["camera"] == camera)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None and shutil.which("mosquitto_passwd") is not None
