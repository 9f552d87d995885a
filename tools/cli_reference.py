"""The CLI reference page of the docs, generated from the command line itself: every command's help as
``ctrt COMMAND --help`` prints it, at a fixed width.

    .venv/bin/python tools/cli_reference.py          # writes docs/reference/cli.md

``tests/test_docs.py`` renders it again and compares, so the page cannot drift from the app.
"""

from __future__ import annotations

from pathlib import Path

import typer
import typer.main

from ctrt.cli import app

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"
WIDTH = 100


def render() -> str:
    root = typer.main.get_command(app)
    top = typer.Context(root, info_name="ctrt", terminal_width=WIDTH, max_content_width=WIDTH)
    parts = ["# CLI reference", "",
             "Every command's help, as `ctrt COMMAND --help` prints it. Its options stand in panels in the order a user",
             "needs them; each ends with an example.", "",
             "```text", root.get_help(top), "```", ""]
    for name in root.list_commands(top):  # type: ignore[attr-defined]
        command = root.get_command(top, name)  # type: ignore[attr-defined]
        assert command is not None
        context = typer.Context(command, info_name=name, parent=top, terminal_width=WIDTH, max_content_width=WIDTH)
        parts += [f"## ctrt {name}", "", "```text", command.get_help(context), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
