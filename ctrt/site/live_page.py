"""The page at ``/``: a tile per camera with its newest annotated picture, its state and its numbers, refreshed at
the live view's rate. A camera that is not live keeps its last picture, greyed, under a line saying since when
(``reconnecting since 10:42:13``). Camera names reach the page only escaped (as text in HTML, as a JSON string in
the script)."""

from __future__ import annotations

import html
import json

STYLE = ("body{margin:0;background:#111;color:#eee;font:15px sans-serif}header{padding:6px 10px;color:#aaa}"
         "main{display:grid;gap:6px;padding:0 6px 6px;grid-template-columns:repeat(auto-fit,minmax(480px,1fr))}"
         "figure{margin:0;background:#1b1b1b}img{width:100%;display:block;background:#222;min-height:240px}"
         "figcaption{padding:4px 8px}.away img{filter:grayscale(1);opacity:.35}.state{font-weight:bold}"
         ".away .state{color:#f90}")
SCRIPT = (
    "const q = location.search; const names = NAMES;"
    "function two(n) { return String(n).padStart(2, '0'); }"
    "function clock(t) { const d = new Date(t * 1000); return two(d.getHours()) + ':' + two(d.getMinutes()) + ':'"
    " + two(d.getSeconds()); }"
    "function tick() { for (const n of names) { const i = new Image();"
    " i.onload = () => { document.getElementById('img-' + n).src = i.src; };"
    " i.src = '/streams/' + encodeURIComponent(n) + '.jpg' + q + (q ? '&' : '?') + 't=' + Date.now(); }"
    " fetch('/streams' + q).then(r => r.json()).then(s => {"
    " document.getElementById('clock').textContent = 'updated ' + clock(Date.now() / 1000);"
    " for (const n of names) { const c = s.cameras[n] || {state: 'starting'};"
    " const x = s.streams.find(v => v.name === n) || {frames: 0, fps: 0, tracks: 0};"
    " const since = c.since_epoch ? ' since ' + clock(c.since_epoch) : '';"
    " document.getElementById('tile-' + n).className = c.state === 'live' ? '' : 'away';"
    " document.getElementById('state-' + n).textContent = c.state + (c.state === 'live' ? '' : since)"
    " + (c.attempt ? ', attempt ' + c.attempt : '');"
    " document.getElementById('num-' + n).textContent = ' · ' + x.frames + ' frames · ' + x.fps + ' FPS · '"
    " + x.tracks + ' tracks'; } }); }"
    "tick(); setInterval(tick, PERIOD);")


def page_html(cameras: list[str], fps: float) -> bytes:
    tiles = "".join(
        f'<figure id="tile-{html.escape(n)}"><img id="img-{html.escape(n)}" alt="{html.escape(n)}"><figcaption>'
        f'{html.escape(n)}: <span class="state" id="state-{html.escape(n)}">starting</span>'
        f'<span id="num-{html.escape(n)}"></span></figcaption></figure>' for n in cameras)
    names = json.dumps(cameras).replace("<", "\\u003c")  # no "</script>" can close the script early
    script = SCRIPT.replace("NAMES", names).replace("PERIOD", str(int(1000 / fps)))
    page = (f"<!doctype html><meta charset=utf-8><title>ctrt</title><style>{STYLE}</style>"
            f'<header>ctrt live view · <span id="clock"></span></header><main>{tiles}</main>'
            f"<script>{script}</script>")
    return page.encode()
