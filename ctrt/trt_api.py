"""Which TensorRT Python API names exist in which release, for the classes ctrt touches, decided without TensorRT.

The data (``assets/trt_api.json``) is ``dir()`` of each release's bindings wheel from PyPI (8.6.1, every 10.x and
11.x minor release; 8.5 derived from 8.6.1 and NVIDIA/TensorRT's 8.5.1 binding sources), written by
``tools/tensorrt_api_names.py``. Names are ``Class.member`` or a top-level ``name``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from .trt_rules import trt_line


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).parent / "assets" / "trt_api.json").read_text())
    return data


def releases() -> list[str]:
    return list(_data()["releases"])


def release_of(version: str) -> str | None:
    """The checked release standing for an installed version (same major.minor; any 8.5.x is '8.5'), or None."""
    minor = ".".join(version.split(".")[:2])
    return next((r for r in releases() if r == minor or r.startswith(minor + ".")), None)


def line_releases(line: str) -> list[str]:
    """The checked releases of a line ('8.5', '8.6', '10', '11')."""
    return [r for r in releases() if trt_line(r) == line]


@cache
def names(release: str) -> frozenset[str]:
    """Every qualified name that ``release`` has."""
    index = releases().index(release)
    return frozenset(name for name, spans in _data()["names"].items()
                     if any(low <= index <= high for low, high in spans))


def members(release: str, cls: str) -> frozenset[str]:
    """The public members of class or enum ``cls`` in ``release`` (top level for ``cls == ''``)."""
    prefix = f"{cls}." if cls else ""
    return frozenset(n[len(prefix):] for n in names(release) if n.startswith(prefix) and (cls or "." not in n))


def missing_on_line(used: set[str], line: str) -> dict[str, list[str]]:
    """For each used name that some release of ``line`` lacks, the releases that lack it."""
    return {name: lacking for name in sorted(used)
            if (lacking := [r for r in line_releases(line) if name not in names(r)])}
