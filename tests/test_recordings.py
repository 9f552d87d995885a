"""Recordings no restart overwrites: a site's runs write dated files of their own; retention removes the oldest
complete ones first and never one being written."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

import ctrt
from ctrt.demo import make_demo_video
from ctrt.runtime.recordings import Retention, dated_stem
from conftest import invoke

SITE = """\
[model]
path = "{model}"
device = "cpu"
[outputs]
save_dir = "out"
{extra}
[[camera]]
name = "door"
source = "door.avi"
"""


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path, demo_onnx):
    make_demo_video(tmp_path / "door.avi", frames=6, size=(320, 240), seed=3)
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(model=demo_onnx, extra=""))
    return path


def test_a_restart_never_writes_over_an_earlier_runs_recordings(site, tmp_path):
    first = invoke("run", "--config", site, "--max-frames", 4)
    assert first.exit_code == 0, first.output
    before = digests(tmp_path / "out")
    assert len(before) == 3 and all(name.startswith("door/") for name in before)
    second = invoke("run", "--config", site, "--max-frames", 2)
    assert second.exit_code == 0, second.output
    after = digests(tmp_path / "out")
    assert len(after) == 6 and {k: after[k] for k in before} == before
    assert len({k.rsplit(".", 1)[0] for k in after}) == 2


def test_segments_of_two_runs_never_share_a_series(site, tmp_path):
    site.write_text(site.read_text().replace('save_dir = "out"', 'save_dir = "out"\nsegment = 1'))
    for _ in range(2):
        assert invoke("run", "--config", site).exit_code == 0
    videos = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.mp4"))
    series = {}
    for video in videos:
        series.setdefault(str(video).rsplit("-", 1)[0], []).append(video.name.rsplit("-", 1)[1])
    assert len(series) == 2 and all(numbers[0] == "00000.mp4" for numbers in series.values())


def test_fixed_names_replace_nothing_already_there_unless_told(site, tmp_path, demo_onnx):
    """A file in save_dir under a name the run gives its own (someone's notes, an earlier run's MOT file) is refused
    by every face, with nothing written; overwrite replaces it."""
    site.write_text(site.read_text().replace('save_dir = "out"', 'save_dir = "out"\nrecordings = "fixed"'))
    assert invoke("run", "--config", site, "--max-frames", 2).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["door.jsonl", "door.mp4", "door.txt"]
    (tmp_path / "out" / "door.txt").write_text("my notes\n")
    before = digests(tmp_path / "out")
    refusal = "door.mp4, door.txt, door.jsonl already there"
    cli = invoke("run", demo_onnx, "--source", tmp_path / "door.avi", "--save-dir", tmp_path / "out")
    assert cli.exit_code == 2 and f"error: --save-dir {tmp_path / 'out'}: {refusal}" in cli.output, cli.output
    checked = invoke("run", "--config", site, "--check")
    assert checked.exit_code == 2 and f"{site}: outputs.save_dir" in checked.output and refusal in checked.output
    with pytest.raises(ctrt.CtrtError, match=refusal) as error:
        with ctrt.load(demo_onnx, device="cpu") as model:
            model.track(str(tmp_path / "door.avi"), save_dir=tmp_path / "out")
    assert error.value.option == "save_dir" and digests(tmp_path / "out") == before
    again = invoke("run", "--config", site, "--max-frames", 2, "--overwrite")
    assert again.exit_code == 0 and (tmp_path / "out" / "door.txt").read_text() != "my notes\n", again.output


def make_recordings(folder: Path, days_old: list[float], size: int = 1000) -> list[Path]:
    made = []
    now = time.time()
    for i, days in enumerate(days_old):
        path = folder / "door" / time.strftime("%Y-%m-%d", time.localtime(now - days * 86400)) / f"{i:02d}-00-00.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - days * 86400, now - days * 86400))
        made.append(path)
    return made


def test_retention_removes_the_oldest_first_and_never_a_file_being_written(tmp_path):
    files = make_recordings(tmp_path, [9, 5, 3, 0.5, 0.1])
    busy = files[0]  # the oldest, but still being written: it stays
    retention = Retention([tmp_path / "door"], keep_days=4, max_gb=None, writing=lambda: {busy})
    assert retention.sweep() == [files[1]]
    assert not files[1].parent.exists()  # its emptied day folder too
    retention = Retention([tmp_path / "door"], keep_days=None, max_gb=2.5e-6, writing=lambda: {busy})
    assert retention.sweep() == [files[2], files[3]]  # 4000 bytes, then 3000, are over 2500; 2000 fit
    assert [p for p in files if p.exists()] == [busy, files[4]]


def test_retention_in_a_site_run(site, tmp_path):
    old = make_recordings(tmp_path / "out", [30, 20])
    site.write_text(site.read_text().replace('save_dir = "out"', 'save_dir = "out"\nkeep_days = 7'))
    result = invoke("run", "--config", site, "--max-frames", 2)
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in old) and len(list((tmp_path / "out").rglob("*.jsonl"))) == 1


def test_a_dated_name_is_taken_by_no_earlier_file(tmp_path):
    now = time.mktime((2026, 12, 7, 10, 42, 13, 0, 0, -1))
    assert dated_stem(tmp_path, "door", now) == "door/2026-12-07/10-42-13"
    (tmp_path / "door" / "2026-12-07").mkdir(parents=True)
    (tmp_path / "door" / "2026-12-07" / "10-42-13-00003.mp4").write_bytes(b"")
    assert dated_stem(tmp_path, "door", now) == "door/2026-12-07/10-42-13-1"


@pytest.mark.slow
def test_a_run_killed_then_restarted_leaves_every_earlier_recording_as_it_was(tmp_path, onnx_85):
    """SIGKILL runs none of ctrt's cleanup: the restart finds the killed run's closed segments and JSON lines and
    leaves them byte for byte, removes only its half-written segment, and writes under a dated name of its own."""
    import signal
    import subprocess
    import sys

    make_demo_video(tmp_path / "door.avi", frames=2000, size=(320, 240), seed=3)
    site = tmp_path / "site.toml"
    site.write_text(SITE.format(model=onnx_85, extra="segment = 1"))
    out = tmp_path / "out"
    process = subprocess.Popen([str(Path(sys.executable).with_name("ctrt")), "run", "--config", str(site)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while len(list(out.rglob("*-00001.mp4"))) < 1:  # two segments closed (a segment takes its name when closed)
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    leftovers = (".partial", ".ctrt-lock")  # the half-written segment, the locks no process holds any more
    killed = {name: digest for name, digest in digests(out).items() if not name.endswith(leftovers)
              and ".partial." not in name}
    assert any(name.endswith(".jsonl") for name in killed) and any(name.endswith("-00000.mp4") for name in killed)
    again = invoke("run", "--config", site, "--max-frames", 3)
    assert again.exit_code == 0, again.output
    after = digests(out)
    assert {name: after[name] for name in killed} == killed  # every earlier file as it was
    assert not [name for name in after if ".partial" in name or name.endswith(".ctrt-lock")]  # swept
    stems = {re.sub(r"-\d{5}$", "", name.rsplit(".", 1)[0]) for name in after}  # segments' numbers left out
    assert len(stems) == 2  # two runs, two dated names


def test_a_live_cameras_video_plays_in_real_time_across_its_segments(tmp_path, monkeypatch):
    """A loop tracking about 3 of a 10 FPS camera's frames a second: each frame is held until the next, so the
    segments (2 s of wall time each) play as long as the run lasted; a camera away for a minute is left out."""
    import cv2
    import numpy as np

    from ctrt.runtime import sinks
    from ctrt.runtime.detections import Detections
    from ctrt.runtime.results import Results

    clock = [1000.0]
    monkeypatch.setattr(sinks.time, "monotonic", lambda: clock[0])
    video = sinks.VideoSink(tmp_path / "cam.avi", fps=10.0, segment_s=2.0, wall=True)
    rng = np.random.default_rng(0)
    frame = np.zeros((48, 64, 3), np.uint8)
    for index in range(200):
        frame[:] = index % 250
        video.write(Results("cam", index, frame, Detections.empty()))
        clock[0] += rng.uniform(0.2, 0.45) + (60.0 if index == 120 else 0.0)  # away after frame 120
    video.close()
    wall = clock[0] - 1000.0 - 60.0  # the minute away is not filled
    lengths = [cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FRAME_COUNT) / 10.0 for p in video.paths]
    assert abs(sum(lengths) - wall) < 0.02 * wall, (sum(lengths), wall)
    assert all(abs(length - 2.0) <= 1.0 for length in lengths[:-1]), lengths  # cut at 2 s of wall time
    first = cv2.VideoCapture(str(video.paths[0]))
    shown = [int(first.read()[1][0, 0, 0]) for _ in range(10)]
    assert shown[0] == 0 and shown == sorted(shown) and len(set(shown)) < 10  # frames held, in order
