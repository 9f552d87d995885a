"""The ``ctrt`` command line: parses options, calls the library, renders with rich. No logic of its own."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import CtrtError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="CenterTrack-HarDNet: checkpoint -> ONNX -> TensorRT engine -> tracking on a live camera.",
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def command(fn: F) -> F:
    """Register ``fn`` as a subcommand whose user errors print as one line with a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CtrtError as exc:
            errors.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    app.command()(wrapper)
    return fn


def _next(*commands: str) -> None:
    """The commands a user would run next, unwrapped so they can be copied."""
    console.print("next:")
    for line in commands:
        console.print(f"  {line}", soft_wrap=True)


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


@command
def export(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="model_last.pth from CenterTrack-HarDNet or CenterNet-HarDNet")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="default: export/<stem>_<H>x<W>.onnx")] = None,
    input_size: Annotated[str, typer.Option(help="HxW, multiples of 32")] = "512x512",
    opset: Annotated[int, typer.Option(help="ONNX opset (TensorRT 8.5 reads up to 17)")] = 17,
    batch: Annotated[int, typer.Option(min=1, help="static batch size")] = 1,
    dynamic_batch: Annotated[bool, typer.Option(help="make the batch dimension dynamic")] = False,
    simplify: Annotated[bool, typer.Option(help="run onnx-simplifier")] = True,
    check: Annotated[bool, typer.Option(help="compare ONNX Runtime with PyTorch after export")] = True,
    atol: Annotated[float, typer.Option(help="largest allowed max-abs difference per output")] = 1e-4,
    random_init: Annotated[bool, typer.Option(help="no checkpoint: seeded random weights (for trying the toolchain)")] = False,
    arch: Annotated[str, typer.Option(help="architecture for --random-init")] = "hardnet_85",
    allow_partial: Annotated[bool, typer.Option(help="load a checkpoint whose keys do not all match")] = False,
) -> None:
    """Checkpoint -> simplified ONNX, checked against PyTorch, with a metadata sidecar."""
    from .export.exporter import default_output, run_export, source_model
    from .export.onnx_export import ExportOptions, parse_input_size

    if (checkpoint is None) == (not random_init):
        raise CtrtError("give a CHECKPOINT, or --random-init for seeded random weights")
    h, w = parse_input_size(input_size)
    with console.status("loading model"):
        model, source, digest, random_weights = source_model(checkpoint, arch, allow_partial)
    stem = checkpoint.stem if checkpoint else f"{arch}_random"
    output = output or default_output(stem, h, w)
    options = ExportOptions(h, w, opset, batch, dynamic_batch, simplify)
    with console.status(f"exporting {model.config.name} at {h}x{w} (opset {opset}), simplifying, checking"):
        result = run_export(model, source, digest, random_weights, output, options, check, atol)

    if result.parity:
        table = Table(title=f"ONNX Runtime (CPU) vs PyTorch, tolerance {atol:g} max abs")
        for column in ("input", "output", "max abs", "max abs / max |ref|", ""):
            table.add_column(column, justify="right" if column.startswith("max") else "left")
        for row in result.parity:
            table.add_row(row.case, row.output, f"{row.max_abs:.2e}", f"{row.rel_to_range:.2e}",
                          "[green]ok[/]" if row.ok else "[red]FAIL[/]")
        console.print(table)
    if random_weights:
        console.print("[yellow]note:[/] weights are random (seeded); detections will not mean anything")
    console.print(f"wrote {result.path} ({_size(result.path)}) and {result.path.name}.json in {result.seconds:.1f}s; "
                  f"ops: {', '.join(result.ops)}", soft_wrap=True)
    _next(f"ctrt run {result.path} --source 0", f"ctrt build {result.path} --fp16")


@command
def inspect(path: Annotated[Path, typer.Argument(help="a checkpoint (.pth) or an exported model (.onnx)")]) -> None:
    """Show what ctrt infers from a checkpoint or reads from an ONNX file."""
    from .inspection import describe

    table = Table(show_header=False, title=str(path))
    for key, value in describe(path):
        table.add_row(key, value)
    console.print(table)


@command
def version() -> None:
    """Print the ctrt version."""
    console.print(f"ctrt {__version__}")


def main() -> None:
    app()
