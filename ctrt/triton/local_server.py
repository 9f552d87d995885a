"""``ctrt serve``: Triton Inference Server on this machine, without a container, from the ``nvidia-pytriton`` wheel.

That wheel carries a real ``tritonserver`` with the Python backend. It needs numpy < 2, so it lives in an environment
of its own (``make triton-env``); the server's Python models import numpy and onnxruntime from there (PYTHONPATH).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import CtrtError

DEFAULT_ENV = Path(".venv-triton")
READY_TIMEOUT_S = 120.0


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In the server's process before it starts: the kernel sends it SIGTERM when ctrt ends, however it ends (a
    SIGKILL runs no cleanup of ours), so no server is left holding the ports."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class ServerEnv:
    site_packages: Path
    python_version: str  # "3.11": which Python-backend stub fits the environment's numpy/onnxruntime

    @property
    def root(self) -> Path:
        return self.site_packages / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"


def find_server_env(env: Path) -> ServerEnv:
    found = sorted(env.glob("lib/python3.*/site-packages/pytriton/tritonserver/bin/tritonserver"))
    if not found:
        raise CtrtError(f"no Triton server in {env}: make it with `make triton-env` (a venv with nvidia-pytriton, "
                        "onnxruntime and numpy<2) or pass --env")
    site = found[0].parents[3]
    return ServerEnv(site, site.parent.name.removeprefix("python"))


def backend_directory(server: ServerEnv) -> Path:
    """Triton wants the Python backend and its stub in one folder; the wheel keeps stubs per Python version."""
    folder = server.site_packages.parent / "ctrt-triton-backends"
    stub = folder / "python" / "triton_python_backend_stub"
    if not stub.is_file():
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(server.root / "backends", staging)
        shutil.copy2(server.root / "python_backend_stubs" / server.python_version / "triton_python_backend_stub",
                     staging / "python" / "triton_python_backend_stub")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port(host: str, port: int, label: str) -> None:
    """Refuse a port another process listens on. Like the server, ignore connections of a previous server still in
    TIME_WAIT (a restart on the same ports must work)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise CtrtError(f"{label} {port} is in use on {host}; choose another port") from None


@dataclass
class Ports:
    grpc: int
    http: int
    metrics: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


class LocalTriton:
    """A tritonserver process serving ``repository``; ``with`` starts it, waits until it is ready, and stops it."""

    def __init__(self, repository: Path, env: Path = DEFAULT_ENV, ports: Ports | None = None,
                 host: str = "127.0.0.1", log: Path | None = None) -> None:
        if not (repository.is_dir() and any(repository.glob("*/config.pbtxt"))):
            raise CtrtError(f"{repository} is not a Triton model repository (no <model>/config.pbtxt); "
                            "write one with ctrt triton MODEL -o DIR")
        self.repository = repository
        self.server = find_server_env(env)
        self.ports = ports or Ports.free()
        self.host = host
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports.grpc}"

    def start(self) -> None:
        for label, port in (("--grpc-port", self.ports.grpc), ("--http-port", self.ports.http),
                            ("--metrics-port", self.ports.metrics)):
            check_port(self.host, port, label)
        libs = self.server.site_packages / "nvidia_pytriton.libs"
        env = {**os.environ, "PYTHONPATH": str(self.server.site_packages),
               "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(libs), os.environ.get("LD_LIBRARY_PATH")]))}
        command = [str(self.server.binary), "--model-repository", str(self.repository.resolve()),
                   "--backend-directory", str(backend_directory(self.server)),
                   "--grpc-address", self.host, "--http-address", self.host, "--metrics-address", self.host,
                   "--grpc-port", str(self.ports.grpc), "--http-port", str(self.ports.http),
                   "--metrics-port", str(self.ports.metrics), "--exit-on-error", "true"]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True,  # our Ctrl-C is not the server's
                                            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        url = f"http://{self.host}:{self.ports.http}/v2/health/ready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                where = f"; its log: {self.log}" if self.log else ""
                raise CtrtError(f"tritonserver exited with code {self.process.returncode} while starting{where}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise CtrtError(f"tritonserver was not ready after {timeout_s:.0f} s")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalTriton:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
