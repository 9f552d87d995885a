"""The open extension points: a user's backend (one register call), sinks and callbacks, and tracker; the examples
that show each, run as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ctrt
from ctrt.demo import make_demo_video
from conftest import sigterm_a_track_loop

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_demo_video(tmp_path_factory.mktemp("ext") / "clip.avi", frames=8, size=(320, 240), seed=5)


@pytest.fixture(scope="module")
def model(demo_onnx):
    with ctrt.load(demo_onnx, device="cpu", threads=1) as opened:
        yield opened


def example(name: str, *args: object, cwd: Path) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_backend_registered_by_one_call_runs_track(demo_onnx, video, tmp_path):
    out = example("custom_backend.py", demo_onnx, video, cwd=tmp_path)
    assert out.strip() == "8 frames tracked on custom onnxruntime (1 threads), 8 model calls"


def test_the_registry_opens_each_kind_by_its_own_factory_and_refuses_unknown_ones(model, demo_onnx, video):
    opened = []

    def factory(spec: str, options: ctrt.LoadOptions):
        opened.append((spec, options.threads))
        return model.backend  # the same network behind another name: tracks must not change

    ctrt.register_backend("mine://", factory)
    with ctrt.load("mine://anything", threads=1) as mine:
        got = [r.to_json() for r in mine.track(str(video))]
    assert opened == [("mine://anything", 1)]
    assert got == [r.to_json() for r in model.track(str(video))]
    with pytest.raises(ctrt.CtrtError, match=r"no backend serves nobody:// models \(nobody://x\)") as error:
        ctrt.load("nobody://x")
    assert error.value.option == "model"
    with pytest.raises(ctrt.CtrtError) as error:
        ctrt.register_backend("no-dot-or-scheme", factory)
    assert error.value.option == "kind"


class Recorder:
    """A user's sink: every frame it saw, and whether it was closed (once)."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, int]] = []
        self.closed = 0

    def write(self, r: ctrt.Results) -> None:
        self.frames.append((r.stream, r.index))

    def close(self) -> None:
        self.closed += 1


def jsonl_frames(path: Path) -> int:
    return len(path.read_text().splitlines())


@pytest.mark.parametrize("ending", ["end", "break", "exception"])
def test_user_sinks_see_every_frame_the_files_get_and_close_with_them(model, video, tmp_path, ending):
    sink, called = Recorder(), []
    sources = {"a": str(video), "b": str(video)}
    with pytest.raises(ValueError) if ending == "exception" else _nothing():
        with model.track(sources, save_dir=tmp_path, sinks=[sink], on_result=lambda r: called.append(r.stream)) as run:
            for r in run:
                if ending != "end" and r.index == 2:
                    if ending == "break":
                        break
                    raise ValueError("the caller's own bug")
    written = {name: jsonl_frames(tmp_path / f"{name}.jsonl") for name in sources}
    assert sink.closed == 1
    assert {name: sum(1 for s, _ in sink.frames if s == name) for name in sources} == written
    assert sorted(called) == sorted(s for s, _ in sink.frames)
    if ending == "end":
        assert written == {"a": 8, "b": 8}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow
def test_user_sinks_close_complete_on_sigterm(demo_onnx, tmp_path):
    video = make_demo_video(tmp_path / "long.avi", frames=200, size=(320, 240), seed=41)
    prelude = f"""
        import json, sys, ctrt
        seen = []

        class Sink:
            def write(self, r): seen.append(r.index)
            def close(self): open({str(tmp_path / "closed.json")!r}, "w").write(json.dumps(seen))

        model = ctrt.load({str(demo_onnx)!r}, device="cpu", threads=1)
    """
    track = f"model.track({str(video)!r}, save_json={str(tmp_path / 't.jsonl')!r}, sinks=[Sink()])"
    assert sigterm_a_track_loop(prelude, track) == 128 + signal.SIGTERM
    seen = json.loads((tmp_path / "closed.json").read_text())
    assert 3 <= len(seen) < 200 and seen == list(range(jsonl_frames(tmp_path / "t.jsonl")))


def test_bad_sinks_are_refused_naming_the_option(model, video):
    for bad, option in (([42], "sinks"), ("print", "sinks"), (None, "sinks")):
        with pytest.raises(ctrt.CtrtError) as error:
            model.track(str(video), sinks=bad)
        assert error.value.option == option
    with pytest.raises(ctrt.CtrtError) as error:
        model.track(str(video), on_result=3)
    assert error.value.option == "on_result"


def test_a_user_tracker_tracks_a_generated_video_in_run_and_session(model, demo_onnx, video, tmp_path):
    out = example("iou_tracker.py", demo_onnx, video, "--save-mot", tmp_path / "iou.txt", cwd=tmp_path)
    rows = np.loadtxt(tmp_path / "iou.txt", delimiter=",", ndmin=2)
    assert out.startswith("8 frames, ") and len(rows) > 0
    ids_per_frame = {}
    for frame, tid in rows[:, :2].astype(int):
        ids_per_frame.setdefault(frame, []).append(tid)
    assert all(len(ids) == len(set(ids)) for ids in ids_per_frame.values())  # one id per object a frame
    assert len(set(rows[:, 1])) < len(rows)  # ids carried across frames, not one per detection
    sys.path.insert(0, str(EXAMPLES))
    try:
        from iou_tracker import IouTracker
    finally:
        sys.path.remove(str(EXAMPLES))
    tracker = IouTracker()
    session = model.session(tracker=tracker)
    assert session.tracker is tracker
    import cv2

    capture = cv2.VideoCapture(str(video))
    shown = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        shown.append(session.update(frame).ids.tolist())
    assert shown and any(shown)


def test_a_tracker_factory_that_makes_no_tracker_is_refused(model, video):
    with pytest.raises(ctrt.CtrtError) as error:
        for _ in model.track(str(video), tracker=lambda: object()):
            pass
    assert error.value.option == "tracker"


@pytest.mark.slow
def test_the_sink_example_writes_its_totals(demo_onnx, video, tmp_path):
    out = example("user_sink.py", demo_onnx, video, "--save-dir", tmp_path / "runs", "--counts",
                  tmp_path / "counts.json", cwd=tmp_path)
    totals = json.loads((tmp_path / "counts.json").read_text())
    assert totals["frames"] == jsonl_frames(tmp_path / "runs" / "clip.jsonl") == 8
    assert out.startswith("8 frames; ")
