"""The ``ctrt`` command line: parses options, calls the library, renders with rich. No loop and no decision of its
own: each command maps its options to library calls and the result to lines, tables and an exit code."""

from . import convert, tracking, machine, evaluation  # noqa: F401, I001  (registered in this order)
from .app import app, main

__all__ = ["app", "main"]
