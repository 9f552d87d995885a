"""Always on: four network cameras tracked for a long while, one of them switched off and on again on a schedule.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--flap-every 300] [--flap-down 60] [--fps 10]

Four MJPEG-over-HTTP cameras on loopback (``tests/mjpeg_camera.py``: generated demo frames, read by OpenCV's
FFmpeg as any IP camera) are tracked by the built-in demo model (224x224, ONNX Runtime CPU) in one run, with the
live server on and every camera's files in a temporary save_dir. ``flap`` is off for --flap-down seconds every
--flap-every seconds. Every second the script reads ``/metrics``; at the end it prints, as JSON:
- per camera: frames tracked, JSON lines written (equal: no tracked frame lost), frames dropped to stay live,
  reconnects, seconds down;
- the flaps made and the flaps ``ctrt_camera_up{camera="flap"}`` showed (each a 1 -> 0 -> 1);
- the steady cameras' reconnects and states (0, and live throughout);
- resident memory: mean of the first and of the last five minutes (or fifths of a shorter run), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import ctrt  # noqa: E402
from mjpeg_camera import MjpegCamera  # noqa: E402
from run_ctrt import ctrt as run_cli  # noqa: E402

STEADY = ("door", "yard", "gate")


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 1e6


def metric(text: str, name: str, camera: str) -> float | None:
    prefix = f'{name}{{camera="{camera}"'
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--flap-every", type=float, default=300)
    parser.add_argument("--flap-down", type=float, default=60)
    parser.add_argument("--fps", type=float, default=10)
    args = parser.parse_args()
    cameras = {name: MjpegCamera(fps=args.fps, seed=i).start() for i, name in enumerate((*STEADY, "flap"))}
    flap = cameras["flap"]
    made = 0
    stop = threading.Event()

    def flapping() -> None:
        nonlocal made
        while not stop.wait(args.flap_every - args.flap_down):
            flap.stop()
            made += 1
            if stop.wait(args.flap_down):
                break
            flap.start()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "demo.onnx"
        run_cli("export", "--builtin", "demo", "--input-size", "224x224", "--no-check", "-o", model)
        out = Path(tmp) / "out"
        memory: list[tuple[float, float]] = []
        shown = 0
        up_before: float | None = None  # a camera is down until its first frame: a flap starts at 1
        steady_states: set[str] = set()
        start = time.monotonic()
        threading.Thread(target=flapping, daemon=True).start()
        with ctrt.load(str(model), device="cpu") as loaded:
            with loaded.track({name: camera.url for name, camera in cameras.items()}, http="127.0.0.1:0",
                              save_dir=out) as run:
                next_look = start
                for _ in run:
                    now = time.monotonic()
                    if now >= next_look:
                        next_look = now + 1.0
                        memory.append((now - start, resident_mb()))
                        text = urllib.request.urlopen(run.http_url + "metrics", timeout=5).read().decode()
                        up = metric(text, "ctrt_camera_up", "flap")
                        if up is not None:
                            shown += up_before == 1.0 and up == 0.0
                            up_before = up
                        steady_states |= {s.state for s in run.report.streams if s.name in STEADY}
                    if now - start >= args.minutes * 60:
                        break
        stop.set()
        for camera in cameras.values():
            camera.stop()
        span = min(300.0, args.minutes * 12)  # five minutes, or a fifth of a shorter run
        first = [mb for t, mb in memory if t <= span]
        last = [mb for t, mb in memory if t >= memory[-1][0] - span]
        streams = {s.name: s for s in run.report.streams}
        result = {
            "minutes": round((time.monotonic() - start) / 60, 1), "camera_fps": args.fps,
            "cameras": {name: {"frames": s.frames, "json_lines": len((out / f"{name}.jsonl").read_text().splitlines()),
                               "dropped_to_stay_live": s.dropped, "reconnects": s.reconnects,
                               "down_s": round(s.down_s, 1)} for name, s in streams.items()},
            "flaps": {"made": made, "shown_by_camera_up": shown},
            "steady_states_seen": sorted(steady_states),
            "memory_mb": {"first": round(sum(first) / len(first), 1), "last": round(sum(last) / len(last), 1),
                          "last_over_first": round(sum(last) / len(last) / (sum(first) / len(first)), 3)},
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
