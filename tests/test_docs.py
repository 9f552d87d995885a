"""The README and the docs site: built strictly, every block marked runnable run as a user would run it, the CLI
reference equal to the app's help, product language only, and the built site readable in a browser."""

from __future__ import annotations

import base64
import fcntl
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARK = "<!-- runnable -->"
BLOCK = re.compile(r"^" + re.escape(MARK) + r"\n```(\w+)\n(.*?)^```$", re.M | re.S)
# Words that speak of how the product was made rather than what it does; reviewed, kept short.
BANNED = [r"\bin session \d", r"\bwork orders?\b", r"\bthe issue\b", r"\bearlier fit\b", r"\btried and dropped\b",
          r"\bran here\b", r"\bmeasured here\b", r"\bhere, one\b", r"\bnone of them ran\b", r"\bthis 2-core machine\b",
          r"\bhas printed\b", r"\bone-off\b", r"\bTODO\b", r"\bwere chosen on seed", r"\bmade after that choice\b",
          r"\bfirst agreement figure\b", r"\bexperiment log\b"]


def nav_pages() -> list[Path]:
    """The docs pages in the order of mkdocs.yml's nav."""
    names = re.findall(r"^\s+- [^:]+: ([\w/.-]+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    return [DOCS / name for name in names]


def runnable_blocks(page: Path) -> list[tuple[str, str, str]]:
    """(where, language, code) of every block of a page marked runnable."""
    text = page.read_text()
    return [(f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 2}", m.group(1), m.group(2))
            for m in BLOCK.finditer(text)]


def build_site(out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = build_site(out)
    assert built.returncode == 0, built.stderr
    return out


def test_readme_is_short_and_starts_with_the_two_fresh_machine_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    assert lines[0] == "# ctrt" and lines[2] == "```"
    assert lines[3].startswith("make demo ") and lines[4].startswith("make test ") and lines[5] == "```"


def test_the_site_builds_strictly_with_every_page_in_the_nav(site):
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == {p.relative_to(DOCS).as_posix() for p in nav_pages()}  # no page left out of the nav
    assert (site / "reference" / "api" / "index.html").read_text().count('id="ctrt.Model.track"') == 1
    # A broken link is an error, not a warning that scrolls by.
    broken = DOCS / "broken-link-probe.md"
    try:
        broken.write_text("# probe\n\n[nowhere](nowhere.md)\n")
        failed = build_site(site.parent / "probe")
    finally:
        broken.unlink()
    assert failed.returncode != 0 and "nowhere.md" in failed.stderr


def test_the_reference_pages_are_what_the_code_generates():
    spec = importlib.util.spec_from_file_location("reference_pages", ROOT / "tools" / "reference_pages.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for page, render in module.PAGES.items():
        assert page.read_text() == render(), f"regenerate {page.name}: .venv/bin/python tools/reference_pages.py"
    cli = module.cli_page()
    assert "\nSources:\n  -s, --source" in cli
    assert cli.count("\n## ctrt ") == cli.count("\n  Example:\n    ctrt ") >= 15  # an example for every command
    from ctrt.site.file import SECTIONS

    site_page = module.site_file_page()
    assert all(f"| `{key}` |" in site_page for keys in SECTIONS.values() for key in keys)


def test_help_stands_options_in_panels_in_the_order_a_user_needs_them():
    from ctrt.options import OPTIONS, PANELS

    placed = [name for names in PANELS.values() for name in names]
    assert sorted(placed) == sorted(OPTIONS)  # every option of the table in exactly one panel
    shown = subprocess.run([Path(sys.executable).parent / "ctrt", "run", "--help"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "120"}).stdout
    titles = re.findall(r"^(\w[\w ]*):$", shown, re.M)
    assert titles == ["Arguments", "Sources", "Model and device", "Tracker", "Counting", "Outputs", "Service",
                      "Triton", "Options"]
    assert "\n  Example:\n    ctrt run " in shown


def test_no_page_readme_or_comment_speaks_of_how_the_product_was_made():
    files = [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "ctrt").rglob("*.py")]
    found = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
             for path in files for text in [path.read_text()] for word in BANNED
             for m in re.finditer(word, text, re.I)]
    assert not found


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["README", "docs"])
def test_every_runnable_block_runs_as_written(tmp_path, reader):
    """In one folder, the README alone, or the pages in the nav's order, as a reader following them would."""
    pages = [ROOT / "README.md"] if reader == "README" else nav_pages()
    blocks = [block for page in pages for block in runnable_blocks(page)]
    assert {language for _, language, _ in blocks} == {"bash", "python"}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for where, language, code in blocks:
        command = ["bash", "-e", "-o", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{where}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, where


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Chromium:
    """Headless Chromium driven over its DevTools pipe (file descriptors 3 and 4, messages ended by NUL)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        to_browser, from_browser = os.pipe(), os.pipe()
        # Copies above 9, so that the child's dup2 onto 3 and 4 never overwrites the other end first.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser[0], from_browser[1])]

        def pipe_as_3_and_4() -> None:  # in the child, before it closes every descriptor but pass_fds
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.process = subprocess.Popen([*command, "--hide-scrollbars", "--remote-debugging-pipe",
                                         "--window-size=1200,900", "about:blank"], env=env, pass_fds=(3, 4),
                                        preexec_fn=pipe_as_3_and_4, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        for fd in (*ends, to_browser[0], from_browser[1]):
            os.close(fd)
        self.send, self.receive = to_browser[1], from_browser[0]
        self.pending, self.calls = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self.calls += 1
        message = {"id": self.calls, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.send, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.pending:
                chunk = os.read(self.receive, 1 << 16)
                assert chunk, "Chromium closed its DevTools pipe"
                self.pending += chunk
            raw, self.pending = self.pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.calls:
                assert "error" not in reply, reply
                return reply["result"]

    def page(self, method: str, **params: object) -> dict:
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str) -> object:
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self.send)
        os.close(self.receive)


@pytest.mark.browser
def test_chromium_reads_the_built_site_and_its_search_finds_model_track(site, chromium):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Chromium(*chromium)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for path, heading in [("", "ctrt"), ("reference/api/", "Python API reference"),
                              ("reference/cli/", "CLI reference")]:
            browser.page("Page.navigate", url=base + path)
            deadline = time.monotonic() + 30
            while browser.evaluate("document.readyState") != "complete" or \
                    browser.evaluate("document.querySelector('h1') && document.querySelector('h1').textContent") \
                    is None:
                assert time.monotonic() < deadline, path
                time.sleep(0.1)
            assert heading in browser.evaluate("document.querySelector('h1').textContent")
            shot = base64.b64decode(browser.page("Page.captureScreenshot")["data"])
            picture = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_GRAYSCALE)
            assert picture is not None and picture.shape[1] == 1200 and picture.std() > 20, path  # not blank
        browser.page("Page.navigate", url=base + "?q=Model.track")  # Material opens its search with ?q=
        deadline, found = time.monotonic() + 30, ""
        while not found:
            assert time.monotonic() < deadline, "the search found nothing for Model.track"
            time.sleep(0.2)
            found = browser.evaluate("Array.from(document.querySelectorAll('.md-search-result__item a'))"
                                     ".map(a => a.href).join(' ')") or ""
        assert "reference/api/" in found and "#ctrt.Model.track" in found
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
