"""Where and how a run serves HTTP: the bind address, the token (given, or ``CTRT_HTTP_TOKEN``), when a camera is
stale and how often the live view encodes a picture. Checked when made: a bind beyond loopback needs a token, and a
token must be one nobody guesses."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from ..errors import CtrtError
from ..options import check, default

MIN_TOKEN = 16  # characters of an HTTP token at least


@dataclass(frozen=True)
class HttpOptions:
    """``bind``: ``PORT`` (loopback) or ``HOST:PORT``; ``token`` defaults to ``CTRT_HTTP_TOKEN``."""

    bind: str
    token: str | None = None
    stale_after: float = default("stale_after")
    fps: float = default("http_fps")

    def __post_init__(self) -> None:
        check("stale_after", self.stale_after)
        check("http_fps", self.fps)
        check("http", self.bind)
        host, _ = parse_bind(self.bind)
        secret = self.secret
        if secret is not None and (len(secret) < MIN_TOKEN or not all(33 <= ord(ch) < 127 for ch in secret)):
            raise CtrtError(f"http_token_file: the token must be at least {MIN_TOKEN} printable characters without "
                            "spaces (a guessable token guards nothing)", option="http_token_file")
        if not is_loopback(host) and not secret:
            raise CtrtError(f"http {self.bind}: serving beyond loopback needs a token (CTRT_HTTP_TOKEN or "
                            "http_token_file)", option="http")

    @property
    def secret(self) -> str | None:
        """The token: the one given, else ``CTRT_HTTP_TOKEN``."""
        return self.token or os.environ.get("CTRT_HTTP_TOKEN") or None


def parse_bind(text: str) -> tuple[str, int]:
    """``8080`` -> loopback; ``0.0.0.0:8080``, ``[::1]:8080``, ``host:8080``; port 0: any free one."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise CtrtError(f"http {text!r}: give PORT or HOST:PORT (a port from 0, any free one, to 65535)",
                        option="http")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
