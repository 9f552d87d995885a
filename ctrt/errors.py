"""The exceptions the CLI turns into one line: user mistakes, and a run stopped by a signal."""

from __future__ import annotations

import signal
from collections.abc import Callable


class CtrtError(Exception):
    """A problem the user can fix (missing file, wrong checkpoint, bad size, missing TensorRT).

    ``option`` names the parameter the message is about (``drop``, ``threshold``), spelled as the Python API spells
    it at the start of the message; the CLI puts its flag in its place::

        >>> CtrtError("drop 'x': choose latest or none", option="drop").render(lambda name: "--" + name)
        "--drop 'x': choose latest or none"
    """

    exit_code = 2

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with its option spelled by ``spell`` (a CLI's flag for a parameter name)."""
        message = str(self)
        if self.option and message.startswith(self.option):
            return spell(self.option) + message[len(self.option):]
        return message


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM (systemd, docker stop, timeout) or SIGHUP: stop, finish what is streamed, exit 128 + signal.

    A KeyboardInterrupt, so every ``finally`` and ``except KeyboardInterrupt`` treats all three like Ctrl-C::

        >>> try:
        ...     for r in run: ...
        ... except ctrt.Interrupted as stop:
        ...     raise SystemExit(stop.exit_code)
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a process the signal ended."""
        return 128 + self.signum
