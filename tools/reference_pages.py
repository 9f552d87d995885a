"""The docs' reference pages generated from the code itself, so they cannot drift from it: every command's help as
``ctrt COMMAND --help`` prints it (docs/reference/cli.md), and every key of a site file with its type, default and
meaning (docs/reference/site-file.md).

    .venv/bin/python tools/reference_pages.py        # writes both

``tests/test_docs.py`` renders them again and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import typer.main

from ctrt.cli import app
from ctrt.options import OPTIONS
from ctrt.plan import SITE_RECORDINGS
from ctrt.site.file import CAMERA_OUTPUT_DEFAULTS, CAMERA_OUTPUT_KEYS, OWN_KEYS_HELP, SECTIONS, TYPE_NAMES

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"
WIDTH = 100


def cli_page() -> str:
    root: Any = typer.main.get_command(app)
    top = typer.Context(root, info_name="ctrt", terminal_width=WIDTH, max_content_width=WIDTH)
    parts = ["# CLI reference", "",
             "Every command's help, as `ctrt COMMAND --help` prints it. Its options stand in panels in the order a user",
             "needs them; each ends with an example.", "",
             "```text", root.get_help(top), "```", ""]
    for name in root.list_commands(top):
        command = root.get_command(top, name)
        context = typer.Context(command, info_name=name, parent=top, terminal_width=WIDTH, max_content_width=WIDTH)
        parts += [f"## ctrt {name}", "", "```text", command.get_help(context), "```", ""]
    return "\n".join(parts)


def _kind(kinds: Any) -> str:
    return " or ".join(TYPE_NAMES[k] for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def _default(value: Any) -> str:
    return "-" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"


def site_file_page() -> str:
    by_key = {o.site: o for o in OPTIONS.values() if o.site and o.name != "threshold"}
    parts = ["# Site file reference", "",
             "Every key of a site file ([Running as a service](../service.md)): `[model]`, `[tracker]`, `[outputs]` and",
             "one `[[camera]]` table per camera. Each key that is an option of `ctrt run` takes the same values, refused",
             "in the same words; the command line's options override the file.", ""]
    for section, keys in SECTIONS.items():
        title = "[[camera]]" if section == "camera" else f"[{section}]"
        parts += [f"## {title}", "", "| key | type | default | |", "|---|---|---|---|"]
        for key, kinds in keys.items():
            option = by_key.get(f"{section}.{key}")
            what = option.help if option else OWN_KEYS_HELP[f"{section}.{key}"]
            default = _default(SITE_RECORDINGS if key == "recordings" else option.default if option else None)
            what = what.replace("|", "/").replace("<", "&lt;")  # a table cell, not HTML
            parts.append(f"| `{key}` | {_kind(kinds)} | {default} | {what} |")
        parts.append("")
    parts += ["## [camera.outputs]", "", "| key | type | default | |", "|---|---|---|---|"]
    parts += [f"| `{key}` | {_kind(kinds)} | {_default(CAMERA_OUTPUT_DEFAULTS[key])} | "
              f"{OWN_KEYS_HELP[f'camera.outputs.{key}']} |" for key, kinds in CAMERA_OUTPUT_KEYS.items()]
    return "\n".join(parts) + "\n"


PAGES = {REFERENCE / "cli.md": cli_page, REFERENCE / "site-file.md": site_file_page}

if __name__ == "__main__":
    for page, render in PAGES.items():
        page.write_text(render())
        print(f"wrote {page}")
