"""The exceptions the CLI turns into one line: user mistakes, and a run stopped by a signal."""

import signal


class CtrtError(Exception):
    """A problem the user can fix (missing file, wrong checkpoint, bad size, missing TensorRT)."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM (systemd, docker stop, timeout) or SIGHUP: stop, finish what is streamed, exit 128 + signal.

    A KeyboardInterrupt, so every ``finally`` and ``except KeyboardInterrupt`` treats all three like Ctrl-C.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
