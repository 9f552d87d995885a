"""The Python API: ``ctrt.load``, ``Model.track``, ``Session.update``, ``Results``; the CLI gives the same bytes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import ctrt
from ctrt.demo import make_demo_video
from ctrt.runtime.sources import FrameSource
from ctrt.runtime.tracker import Tracker
from conftest import invoke, sigterm_a_track_loop

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Three sources of different lengths and sizes."""
    root = tmp_path_factory.mktemp("api")
    return [make_demo_video(root / f"{name}.avi", frames=frames, size=size, seed=30 + i)
            for i, (name, frames, size) in enumerate([("door", 7, (640, 360)), ("yard", 5, (480, 270)),
                                                      ("hall", 6, (320, 240))])]


@pytest.fixture(scope="module")
def model(demo_onnx):
    with ctrt.load(demo_onnx, device="cpu") as opened:
        yield opened


def frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_import_ctrt_loads_no_heavy_dependency():
    code = "import sys, ctrt; print(sorted(m for m in ('torch', 'cv2', 'onnxruntime', 'onnx') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert "load" in dir(ctrt) and ctrt.Results.__module__ == "ctrt.runtime.results"


@pytest.mark.slow
def test_track_over_three_sources_equals_three_sessions_and_ctrt_run(model, demo_onnx, videos, tmp_path):
    records: dict[str, list[str]] = {}
    rows: dict[str, list[str]] = {}
    with model.track(videos, save_dir=tmp_path / "site") as run:
        for r in run:
            assert r.index == len(records.setdefault(r.stream, []))  # each stream in its own order
            records[r.stream].append(r.to_json() + "\n")
            rows.setdefault(r.stream, []).append(r.to_mot())
    assert run.streams == ["door", "yard", "hall"] and run.report.exit_status == 0
    assert [s.frames for s in run.report.streams] == [7, 5, 6]
    for name, video in zip(run.streams, videos):
        session = model.session()
        alone = [session.update(frame) for frame in FrameSource(str(video))]
        assert "".join(records[name]) == "".join(r.to_json() + "\n" for r in alone)
        assert "".join(rows[name]) == "".join(r.to_mot() for r in alone)
        # What the sinks wrote is what the Results say, and what `ctrt run` writes for the source alone.
        assert (tmp_path / "site" / f"{name}.jsonl").read_text() == "".join(records[name])
        assert (tmp_path / "site" / f"{name}.txt").read_text() == "".join(rows[name])
        result = invoke("run", demo_onnx, "--source", video, "--save-json", tmp_path / f"{name}.jsonl",
                        "--save-mot", tmp_path / f"{name}.txt", "--device", "cpu")
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{name}.jsonl").read_bytes() == "".join(records[name]).encode()
        assert (tmp_path / f"{name}.txt").read_bytes() == "".join(rows[name]).encode()
        assert frame_count(tmp_path / "site" / f"{name}.mp4") == len(alone)
    assert sum(len(r) for r in alone) > 0  # the demo model finds the photographs


def test_results_fields_masks_and_plot(model, videos):
    session = model.session(tracker="robust,min_hits=1")
    frame = next(iter(FrameSource(str(videos[0]))))
    r = session.update(frame)
    assert len(r) > 0 and r.frame is frame and r.boxes.shape == (len(r), 4)
    assert set(r.speed_ms) == {"preprocess", "pre_hm", "infer", "decode", "track"}
    people = r[r.classes == 1]
    assert len(people) == int((r.classes == 1).sum()) and people.stream == r.stream and people.index == 0
    record = json.loads(r.to_json())
    assert record["frame"] == 1 and [t["tracking_id"] for t in record["results"]] == r.ids.tolist()
    drawn = r.plot()
    assert drawn.shape == frame.shape and (drawn != frame).any() and drawn is not frame
    session.reset()
    assert session.update(frame).to_json() == r.to_json()  # after reset the next frame is a first frame again


def test_detect_is_a_first_frame_without_tracking(model, videos):
    frame = next(iter(FrameSource(str(videos[1]))))
    detected = model.detect(frame)
    first = model.session().update(frame)
    assert len(detected) == len(first) > 0 and (detected.ids == 0).all()
    assert np.array_equal(detected.boxes, first.boxes) and np.array_equal(detected.scores, first.scores)


def test_to_supervision_round_trips_ids_boxes_and_scores(model, videos):
    import supervision as sv

    session = model.session()
    for frame in FrameSource(str(videos[2])):
        r = session.update(frame)
    detections = r.to_supervision()
    shown = r[r.shown]
    assert isinstance(detections, sv.Detections) and len(detections) == len(shown) > 0
    assert detections.tracker_id.tolist() == shown.ids.tolist()
    assert np.array_equal(detections.xyxy, shown.boxes) and np.array_equal(detections.confidence, shown.scores)
    assert detections.data["class_name"].tolist()[0] in ("person", "cat", "cup", "airplane")


def test_tracker_presets_and_specs_are_one_thing():
    assert ctrt.tracker_preset("robust", gate=1.0) == ctrt.TrackerConfig.from_options(preset="robust", gate=1.0)
    from ctrt.runtime.tracker import parse_tracker, resolve_tracker

    assert parse_tracker("robust,gate=1") == ctrt.tracker_preset("robust", gate=1.0)
    assert resolve_tracker("centertrack", 0.2).new_thresh == 0.2
    with pytest.raises(ctrt.CtrtError) as error:
        resolve_tracker(ctrt.tracker_preset("robust"), 0.5)
    assert error.value.option == "threshold"


def test_errors_name_the_parameter_and_the_cli_its_flag(model, demo_onnx, videos, tmp_path):
    with pytest.raises(ctrt.CtrtError) as error:
        model.track(videos[0], drop="sometimes")
    assert error.value.option == "drop" and str(error.value).startswith("drop 'sometimes'")
    with pytest.raises(ctrt.CtrtError) as error:
        model.track(videos[0], tracker="robust,gate=2")
    assert error.value.option == "tracker" and str(error.value) == "tracker 'robust,gate=2': gate 2: give more " \
        "than 0, up to 1 (a share of the box size)"
    with pytest.raises(ctrt.CtrtError) as error:
        model.track(videos[0], tracker=ctrt.TrackerConfig.from_options(gate=2))
    assert error.value.option == "gate"
    with pytest.raises(ctrt.CtrtError) as error:
        model.track(videos, save_video=tmp_path / "v.mp4")
    assert error.value.option == "save_dir"
    result = invoke("run", demo_onnx, "--source", videos[0], "--drop", "sometimes")
    assert result.exit_code == 2 and result.output.strip() == "error: --drop 'sometimes': choose latest or none"
    result = invoke("run", demo_onnx, "--source", videos[0], "--low-thresh", "0.5")
    assert result.exit_code == 2 and result.output.strip().startswith("error: --low-thresh 0.5 must be below")


def test_break_and_an_exception_in_the_loop_body_leave_complete_outputs(model, videos, tmp_path):
    with model.track(videos[0], save_video=tmp_path / "b.mp4", save_json=tmp_path / "b.jsonl") as run:
        for r in run:
            if r.index == 2:
                break
    assert run.report.streams[0].frames == 3 and frame_count(tmp_path / "b.mp4") == 3
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == 3

    def failing_loop():
        for r in model.track(videos[1], save_video=tmp_path / "e.avi", save_mot=tmp_path / "e.txt",
                             save_json=tmp_path / "e.jsonl"):
            if r.index == 1:
                raise ValueError("the caller's own bug")

    with pytest.raises(ValueError):
        failing_loop()  # no ``with``: the run is closed when dropped
    assert frame_count(tmp_path / "e.avi") == 2 and len((tmp_path / "e.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_sigterm_during_a_track_loop_leaves_complete_outputs(demo_onnx, tmp_path):
    video = make_demo_video(tmp_path / "long.avi", frames=300, size=(320, 240), seed=41)
    prelude = f"import sys, ctrt\nmodel = ctrt.load({str(demo_onnx)!r}, device='cpu', threads=1)\n"
    track = f"model.track({str(video)!r}, save_video={str(tmp_path / 't.mp4')!r}, " \
            f"save_json={str(tmp_path / 't.jsonl')!r})"
    assert sigterm_a_track_loop(prelude, track) == 128 + signal.SIGTERM
    frames = len((tmp_path / "t.jsonl").read_text().splitlines())
    assert 3 <= frames < 300 and frame_count(tmp_path / "t.mp4") == frames


@pytest.mark.slow
def test_a_finished_run_reports_latency_and_an_unstarted_run_closes_its_sources(model, videos):
    run = model.track(videos[:2])
    for _ in run:
        pass
    for stream in run.report.streams:
        latency = stream.latency_percentiles()
        assert stream.fps > 0 and 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    source = FrameSource(str(videos[0]))
    unstarted = model.track({"never": source})
    unstarted.close()
    assert not source.capture.isOpened() and unstarted.report.streams[0].frames == 0


@pytest.mark.parametrize("example, args", [
    ("camera_loop.py", ["--source", "{video}", "--out", "{tmp}/out.mp4"]),
    ("several_cameras.py", ["{video}", "{video2}", "--save-dir", "{tmp}/site"]),
    ("count_line_crossings.py", ["{video}", "--line", "0,120,320,120"]),
])
@pytest.mark.slow
def test_examples_run(demo_onnx, videos, tmp_path, example, args):
    values = {"video": videos[2], "video2": videos[1], "tmp": tmp_path}
    result = subprocess.run([sys.executable, REPO / "examples" / example, demo_onnx,
                             *[a.format(**values) for a in args]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    if example == "camera_loop.py":
        assert frame_count(tmp_path / "out.mp4") == 6 and "track 1 at" in result.stdout
    elif example == "several_cameras.py":
        assert "hall: 6 frames" in result.stdout and (tmp_path / "site" / "yard.jsonl").exists()
    else:
        assert result.stdout.startswith("in ")


def test_a_frame_is_taken_as_opencv_takes_it_or_refused_naming_frame(model, videos):
    frame = next(iter(FrameSource(str(videos[2]))))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    bad = [None, [[1, 2, 3]], b"\x00" * 30, frame.astype(np.int8), frame.astype(bool), np.zeros((0, 0, 3), np.uint8),
           np.ascontiguousarray(frame.transpose(2, 0, 1)), frame[None, None], frame.astype(object),
           frame.astype(np.float64), frame.astype(np.float32) / 255, frame.astype(np.uint16), frame[:, :, :2]]
    session = model.session()
    for value in bad:
        with pytest.raises(ctrt.CtrtError) as error:
            session.update(value)
        assert error.value.option == "frame", type(value)
        with pytest.raises(ctrt.CtrtError):
            model.detect(value)
    # Nothing refused changed the session: its first frame is still a first frame.
    assert session.update(frame).to_json() == model.session().update(frame).to_json()
    as_bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert model.session().update(gray).to_json() == model.session().update(as_bgr).to_json()
    bgra = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    assert model.session().update(bgra).to_json() == model.session().update(frame).to_json()


PYTHON_MISTAKES = [  # (call, option): each one CtrtError naming the keyword, nothing opened or written
    (lambda m, v: m.session(tracker=5), "tracker"),
    (lambda m, v: m.track(v, publish=5), "publish"),
    (lambda m, v: ctrt.read_site(None), "config"),
    (lambda m, v: ctrt.load(m.path, threads=1.5), "threads"),
    (lambda m, v: m.track([v, None]), "source"),
    (lambda m, v: m.track(b"clip.avi"), "source"),
    (lambda m, v: m.track(v, max_frames=0), "max_frames"),
    (lambda m, v: m.track(v, max_frames=1.5), "max_frames"),
    (lambda m, v: m.track(v, max_frames="2"), "max_frames"),
    (lambda m, v: m.track(v, segment=float("nan")), "segment"),
    (lambda m, v: m.track(v, segment="10"), "segment"),
    (lambda m, v: m.track(v, reconnects=-1), "reconnects"),
    (lambda m, v: m.track(v, save_video="v.txt"), "save_video"),
    (lambda m, v: m.track({"a#": v}), "source"),
    (lambda m, v: m.track(v, recordings="sometimes"), "recordings"),
    (lambda m, v: m.session(fps=0), "fps"),
    (lambda m, v: m.session().update(BLACK, timestamp=1.0), "fps"),
    (lambda m, v: m.session(fps=10).update(BLACK, timestamp="now"), "timestamp"),
    (lambda m, v: [session.update(BLACK, timestamp=t) for session in [m.session(fps=10)] for t in (2.0, 1.0)],
     "timestamp"),
]
BLACK = np.zeros((64, 64, 3), np.uint8)


@pytest.mark.parametrize("call, option", PYTHON_MISTAKES, ids=[o + str(i) for i, (_, o) in enumerate(PYTHON_MISTAKES)])
def test_each_python_mistake_is_a_ctrt_error_naming_its_keyword(model, videos, tmp_path, call, option):
    with pytest.raises(ctrt.CtrtError) as error:
        call(model, str(videos[0]))
    assert error.value.option == option


def test_a_closed_model_says_so(demo_onnx, videos):
    model = ctrt.load(demo_onnx, device="cpu")
    model.close()
    for call in (lambda: model.track(str(videos[0])), lambda: model.session(), lambda: model.detect(None)):
        with pytest.raises(ctrt.CtrtError) as error:
            call()
        assert error.value.option == "model" and "closed" in str(error.value)


def test_opencv_keeps_quiet_under_the_python_api_too(demo_onnx):
    code = ("import ctrt\nmodel = ctrt.load(%r, device='cpu')\ntry:\n    model.track('rtsp://127.0.0.1:9/cam', "
            "reconnects=0)\nexcept ctrt.CtrtError as error:\n    print(error.option)\n" % str(demo_onnx))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "None", result.stderr
    assert "WARN" not in result.stderr and "ERROR" not in result.stderr, result.stderr


class GapRecorder(Tracker):
    """The built-in tracker, noting the gap it is told at each update."""

    def __init__(self) -> None:
        super().__init__(ctrt.tracker_preset("robust"))
        self.gaps: list[int] = []

    def step(self, detections, gap=1):
        self.gaps.append(gap)
        return super().step(detections, gap)


def test_timestamps_tell_the_tracker_the_camera_frames_between_updates(model, videos):
    frames = [frame for frame in FrameSource(str(videos[0]))]
    fixed = model.session(tracker="robust")
    stamped = model.session(tracker="robust", fps=10)
    # Equal gaps of one camera frame: the same as frames fed without timestamps, field for field.
    for index, frame in enumerate(frames):
        assert fixed.update(frame).to_json() == stamped.update(frame, timestamp=100 + index / 10).to_json()
    recorder = GapRecorder()
    session = model.session(tracker=recorder, fps=10)
    for frame, t in zip(frames, (5.0, 5.1, 5.4, 5.5, 5.52, 6.0)):  # 0.02 s: the next camera frame at the earliest
        session.update(frame, timestamp=t)
    assert recorder.gaps == [1, 1, 3, 1, 1, 5]
    session.reset()  # a new start: the next timestamp is a first one
    session.update(frames[0], timestamp=1.0)
    assert recorder.gaps[-1] == 1


def test_a_run_that_drops_frames_tells_the_tracker_how_many(model, videos):
    total = frame_count(videos[0])
    for drop in ("none", "latest"):
        recorders: list[GapRecorder] = []
        with model.track(str(videos[0]), drop=drop, tracker=lambda: recorders.append(GapRecorder()) or recorders[-1]) as run:
            processed = sum(1 for _ in run)
        gaps = recorders[0].gaps
        assert len(gaps) == processed and min(gaps) >= 1
        # Each gap counts the frames read since the frame tracked before (the first: since the start): with every
        # frame read, they add up to the last frame's number, which is the video's last (a last frame is never
        # dropped).
        assert sum(gaps) == total and processed + run.report.streams[0].dropped == total
        if drop == "none":
            assert gaps == [1] * total


def test_each_box_is_tagged_with_its_id_class_and_score():
    """A filled tag of the track's colour above its box, as wide as its label: a class with a longer name gets a
    wider tag, so the class is written there."""
    from ctrt.runtime.annotate import annotate, id_color
    from ctrt.runtime.detections import Detections

    def tag_width(cls: int) -> int:
        tracks = Detections.create(np.array([[100, 100, 300, 300]], np.float32), np.array([0.9], np.float32),
                                   np.array([cls], np.int32), np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32))
        tracks.ids = np.array([7])
        drawn = annotate(np.zeros((480, 640, 3), np.uint8), tracks)
        band = (drawn[70:98] == id_color(7)).all(axis=2)  # above the box's top edge (y 100): the tag
        columns = np.flatnonzero(band.any(axis=0))
        return int(columns.max() - columns.min()) if len(columns) else 0

    assert tag_width(3) > 40 and tag_width(10) > tag_width(3) + 30  # "car" against "traffic light"
