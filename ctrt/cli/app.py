"""What every ``ctrt`` command shares: the typer app, the consoles, one-line errors, progress phases, tables."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..version import __version__
from ..errors import CtrtError, Interrupted
from ..options import OPTIONS, PANELS, flag_of, panel_of
from ..progress import Progress
from ..shutdown import stop_on_signals


app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# In a pipe or a log rich would wrap at 80 columns, mid-sentence; there, lines may be as long as they need.
LOG_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
console = Console(highlight=False, width=LOG_WIDTH)
errors = Console(stderr=True, highlight=False, width=LOG_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])
# Module -> (what to call it, the extra that installs it); see pyproject.toml. On a Jetson, TensorRT, OpenCV and
# PyTorch come from JetPack / NVIDIA's wheels instead (docs: "On a Jetson").
EXTRAS = {"torch": ("PyTorch", "export"), "onnxsim": ("onnx-simplifier", "export"),
          "onnxscript": ("onnxscript", "export"), "onnxruntime": ("ONNX Runtime", "cpu"),
          "cv2": ("OpenCV", "video"), "tritonclient": ("tritonclient", "serve"), "trackeval": ("TrackEval", "eval"),
          "pycocotools": ("pycocotools", "eval"), "matplotlib": ("matplotlib", "plot"),
          "cuda": ("cuda-python", "trt"), "pycuda": ("pycuda", "pycuda")}


class PanelledCommand(typer.core.TyperCommand):
    """A command whose help stands its options in panels: those of ``options.PANELS`` in that order, the command's
    own (export's "Graph", bench's "Measuring") before "Outputs", then the rest under "Options"; it ends with an
    example line."""

    def format_options(self, ctx: Any, formatter: Any) -> None:  # typer's own click types
        arguments: list[tuple[str, str]] = []
        panels: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
            else:
                panels.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(record)
        shared = list(PANELS)
        own = [name for name in panels if name not in PANELS and name != "Options"]
        cut = shared.index("Outputs")
        order = ["Arguments", *shared[:cut], *own, *shared[cut:], "Options"]
        panels["Arguments"] = arguments
        for title in order:
            if panels.get(title):
                with formatter.section(title):
                    formatter.write_dl(panels[title])


def _show_version(value: bool) -> None:
    if value:
        console.print(f"ctrt {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_show_version,
                                          help="print the version and exit")] = False,
) -> None:
    """CenterTrack-HarDNet: checkpoint -> ONNX -> TensorRT engine -> tracking on a live camera."""


@contextlib.contextmanager
def phases(what: str) -> Iterator[Progress]:
    """A long command's phases with the time since it began: on a terminal a spinner (lines marked ``keep`` stay),
    in a pipe or a log (systemd, docker) one plain line per phase, never wrapped."""
    start = time.perf_counter()
    if console.is_terminal:
        with console.status(what) as status:
            def show(text: str, keep: bool = False) -> None:
                if keep:
                    console.print(escape(text), soft_wrap=True)
                status.update(f"{escape(what)}: {escape(text)} ({time.perf_counter() - start:.0f} s)")

            yield show
    else:
        def line(text: str, keep: bool = False) -> None:
            console.print(f"{escape(what)}: {escape(text)} ({time.perf_counter() - start:.1f} s)", soft_wrap=True)

        yield line


def titled(title: str) -> Table:
    """A table at least as wide as its title, so the title is never broken across lines."""
    return Table(title=title, min_width=min(len(title), console.width))


def error(message: str) -> None:
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warning(message: str) -> None:
    errors.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def spell(option: str, flags: dict[str, str] | None = None) -> str:
    """The flag of a library parameter: the command's own where it names it otherwise, else the options table's
    (``threshold`` is ``--track-thresh``), else ``--`` + the name with dashes."""
    return (flags or {}).get(option) or flag_of(option)


class _WarningLines(logging.Handler):
    """The library's warnings (a stream reconnecting, a source skipped) as the CLI's one-line warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        warning(record.getMessage())


library_log = logging.getLogger("ctrt")
library_log.addHandler(_WarningLines(logging.WARNING))
library_log.propagate = False


def command(fn: F | None = None, *, flags: dict[str, str] | None = None, example: str = "") -> Any:
    """Register ``fn`` as a subcommand, ``example`` the line that ends its help. User errors print as one line with
    exit code 2, a library parameter spelled as this command's flag (``flags``: where it is not ``--`` + the name);
    Ctrl-C, SIGTERM and SIGHUP stop it the same way (outputs finalised or not written at all) with exit code 128 +
    signal."""
    if fn is None:
        return functools.partial(command, flags=flags, example=example)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            for name, value in kwargs.items():  # click takes "nan" and "inf" as floats; no option means either
                if isinstance(value, float) and not math.isfinite(value):
                    raise CtrtError(f"{name} {value}: give a finite number", option=name)
            with stop_on_signals():
                return fn(*args, **kwargs)
        except CtrtError as exc:
            error(exc.render(lambda option: spell(option, flags)))
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:  # an optional dependency this command needs is not installed
            top = (exc.name or "").split(".")[0]
            if top not in EXTRAS:
                raise
            package, extra = EXTRAS[top]
            error(f"ctrt {fn.__name__.replace('_', '-')} needs {package}, which is not installed: "
                  f"pip install 'ctrt[{extra}]'")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            stop = exc if isinstance(exc, Interrupted) else Interrupted()
            errors.print(f"interrupted ({stop}): {fn.__name__} stopped before finishing and left no partial file")
            raise typer.Exit(stop.exit_code) from None

    # "\b": click prints the paragraph as it is, so the example is never rewrapped.
    app.command(cls=PanelledCommand, epilog=f"\b\nExample:\n  {example}" if example else None)(wrapper)
    return fn


@command(example="ctrt version")
def version() -> None:
    """Print the ctrt version."""
    console.print(f"ctrt {__version__}")


def opt(name: str, **extra: Any) -> Any:
    """A typer option from the options table: its flags and help (the default is the parameter's, from the table
    too). Bounds are not given to click: the library refuses a bad value in the table's words, spelled as the
    flag."""
    option = OPTIONS[name]
    flag = option.cli if option.kind is not bool or "/" in option.cli else f"{option.cli}/--no-{option.cli[2:]}"
    return typer.Option(*(d for d in (option.short, flag) if d), help=option.help, rich_help_panel=panel_of(name),
                        **extra)


def positive(value: Optional[float]) -> Optional[float]:
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not > 0")
    return value


def sidecars(*paths: Optional[Path]) -> list[Optional[Path]]:
    """A model file and its metadata sidecar: both are inputs that no output may replace."""
    from ..artifacts import sidecar_path

    return [q for p in paths for q in ((p, sidecar_path(p)) if p else ())]


def local(model: str) -> Optional[Path]:
    """The file a model argument names, None for a model served by Triton."""
    from ..runtime.backends.registry import is_remote

    return None if is_remote(model) else Path(model)


def next_steps(*commands: str) -> None:
    """The commands a user would run next, unwrapped so they can be copied."""
    console.print("next:")
    for line in commands:
        console.print(f"  {escape(line)}", soft_wrap=True)


def size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def write_results(data: dict[str, Any], json_out: Optional[Path], plot_out: Optional[Path],
                   plot: Callable[[dict[str, Any], Path], None]) -> None:
    """A command's --json and --plot files (bench, eval)."""
    from ..outputs import write_text_atomic

    if json_out:
        write_text_atomic(json_out, json.dumps(data, indent=2))
        console.print(f"wrote {escape(str(json_out))}", soft_wrap=True)
    if plot_out:
        plot(data, plot_out)
        console.print(f"wrote {escape(str(plot_out))}", soft_wrap=True)


def notes(lines: list[str]) -> None:
    """A model's notes (``Model.notes``, ``meta_notes``): what its user should know before trusting it."""
    for line in lines:
        console.print(f"[yellow]note:[/] {escape(line)}", soft_wrap=True)


def main() -> None:
    """The console script: like ``app()``, but a usage mistake (unknown option, value out of range) is one
    ``error:`` line naming the command, as every other user error is."""
    if not sys.argv[1:]:
        sys.argv.append("--help")
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        error(f"{where}{exc.format_message()}{hint}")
        code = exc.exit_code
    except typer.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
