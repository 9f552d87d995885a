"""The caller's own consumers of a run: objects with ``write(results)`` and ``close()``, or plain callables
(``Model.track(..., sinks=[...], on_result=f)``). Each sees every frame the run's own files get, in the same
order, and is closed once, when the run ends however it ends (its end, ``break``, an exception, a signal)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, Union, runtime_checkable

from ..errors import CtrtError
from .results import Results


@runtime_checkable
class UserSinkLike(Protocol):
    def write(self, results: Results) -> None: ...

    def close(self) -> None: ...


UserSink = Union[UserSinkLike, Callable[[Results], object]]


def user_sinks(sinks: Sequence[UserSink], on_result: Callable[[Results], object] | None = None) -> list[UserSink]:
    """The caller's sinks, checked: each an object with ``write`` and ``close``, or a callable."""
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, Sequence):
        raise CtrtError(f"sinks {sinks!r}: give a list of sinks (write and close) or callables", option="sinks")
    for sink in sinks:
        if not isinstance(sink, UserSinkLike) and not callable(sink):
            raise CtrtError(f"sinks: {sink!r} has no write and close and is not callable", option="sinks")
    if on_result is not None and not callable(on_result):
        raise CtrtError(f"on_result {on_result!r}: give a callable taking each Results", option="on_result")
    return [*sinks, *([on_result] if on_result is not None else [])]


class SharedSink:
    """One caller's sink as every stream of the run sees it: written by each stream, closed when the last stream
    that took it closes (or when the run ends, for streams that never opened)."""

    def __init__(self, sink: UserSink) -> None:
        self.sink = sink
        self.holders = 0
        self.closed = False

    def share(self) -> _Share:
        self.holders += 1
        return _Share(self)

    def write(self, results: Results) -> None:
        if isinstance(self.sink, UserSinkLike):
            self.sink.write(results)
        else:
            self.sink(results)

    def release(self) -> None:
        self.holders -= 1
        if self.holders <= 0:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if isinstance(self.sink, UserSinkLike):
                self.sink.close()


class _Share:
    """A stream's hold on a ``SharedSink`` (a ``Sink`` of that stream)."""

    paths: list[Path] = []  # the caller's files are the caller's to report

    def __init__(self, shared: SharedSink) -> None:
        self.shared = shared
        self.released = False

    def write(self, results: Results) -> None:
        self.shared.write(results)

    def close(self) -> None:
        if not self.released:
            self.released = True
            self.shared.release()
