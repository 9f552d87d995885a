"""The page at ``/``: a tile per camera with its newest annotated picture and its numbers, refreshed at the live
view's rate. Camera names reach the page only escaped (as text in HTML, as a JSON string in the script)."""

from __future__ import annotations

import html
import json


def page_html(cameras: list[str], fps: float) -> bytes:
    tiles = "".join(f'<figure><img id="img-{html.escape(n)}" alt="{html.escape(n)}"><figcaption '
                    f'id="cap-{html.escape(n)}">{html.escape(n)}</figcaption></figure>' for n in cameras)
    names = json.dumps(cameras).replace("<", "\\u003c")  # no "</script>" can close the script early
    script = ("const q = location.search; const names = " + names + ";"
              "function tick() { for (const n of names) { const i = new Image();"
              " i.onload = () => { document.getElementById('img-' + n).src = i.src; };"
              " i.src = '/streams/' + encodeURIComponent(n) + '.jpg' + q + (q ? '&' : '?') + 't=' + Date.now(); }"
              " fetch('/streams' + q).then(r => r.json()).then(s => { for (const x of s.streams) {"
              " document.getElementById('cap-' + x.name).textContent = x.name + ': ' + x.frames + ' frames, '"
              " + x.fps + ' FPS, ' + x.tracks + ' tracks'; } }); }"
              f"tick(); setInterval(tick, {int(1000 / fps)});")
    page = ("<!doctype html><meta charset=utf-8><title>ctrt</title><style>body{margin:0;background:#111;"
            "color:#eee;font:14px sans-serif}main{display:grid;gap:4px;grid-template-columns:repeat("
            "auto-fill,minmax(320px,1fr))}figure{margin:0}img{width:100%;background:#222;min-height:180px}"
            f"</style><main>{tiles}</main><script>{script}</script>")
    return page.encode()
