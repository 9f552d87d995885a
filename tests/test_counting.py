"""Counting lines and zones: scenarios with written-down counts, fed to the counter as tracks frame by frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ctrt.counting.counter import Counter
from ctrt.counting.shapes import Line, Zone, shapes_for
from ctrt.errors import CtrtError
from ctrt.runtime.detections import Detections

FRAME = (480, 640, 3)
# Drawn left to right across the middle: "in" is downwards (the right hand of someone walking it left to right).
DOOR = "door:0.25,0.5,0.75,0.5"


def tracks(people: list[tuple]) -> Detections:
    """``(id, x, bottom)`` or ``(id, x, bottom, class, shown)``: a 40x100 box standing at (x, bottom)."""
    rows = [(p + (1, True))[:5] for p in people]
    boxes = np.array([[x - 20, b - 100, x + 20, b] for _, x, b, _, _ in rows], np.float32).reshape(-1, 4)
    n = len(rows)
    dets = Detections.create(boxes, np.full(n, 0.9, np.float32), np.array([r[3] for r in rows], np.int32),
                             np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32))
    dets.ids[:] = [r[0] for r in rows]
    dets.shown[:] = [r[4] for r in rows]
    return dets


def run(frames: list[list[tuple]], lines=DOOR, zones=None, fps: float | None = None) -> tuple[Counter, list]:
    counter = Counter(shapes_for("cam", lines, zones), "cam", fps=lambda: fps)
    events = [e for people in frames for e in counter.update(tracks(people), FRAME)]
    return counter, events


def walk(track: int, x: float, start: float, stop: float, frames: int, cls: int = 1) -> list[list[tuple]]:
    return [[(track, x, y, cls)] for y in np.linspace(start, stop, frames)]


def crossings(events: list) -> list[tuple[str, int, str]]:
    return [(e.name, e.id, e.direction) for e in events if e.event == "cross"]


def test_one_walker_crossing_once_is_one_in():
    counter, events = run(walk(1, 320, 150, 350, 20))
    assert crossings(events) == [("door", 1, "in")]
    assert counter.counts["door"] == {"in": {"person": 1}, "out": {}}


def test_crossing_and_coming_back_is_one_in_and_one_out():
    _, events = run(walk(1, 320, 150, 350, 20) + walk(1, 320, 350, 150, 20))
    assert crossings(events) == [("door", 1, "in"), ("door", 1, "out")]


def test_a_box_jittering_on_the_line_counts_nothing():
    jitter = [[(1, 320, 240 + (3 if i % 2 else -3))] for i in range(20)]
    _, events = run(walk(1, 320, 150, 236, 10) + jitter + walk(1, 320, 236, 150, 10))
    assert crossings(events) == []


def test_a_box_flickering_one_frame_to_the_far_side_counts_nothing():
    frames = walk(1, 320, 150, 230, 10) + [[(1, 320, 300)]] + walk(1, 320, 230, 150, 10)
    _, events = run(frames)
    assert crossings(events) == []


def test_crossing_beyond_the_segments_end_counts_nothing():
    _, events = run(walk(1, 600, 150, 350, 20))  # the line spans x 160..480
    assert crossings(events) == []


def test_a_line_two_pixels_from_the_frame_edge_counts():
    edge = "edge:0,478,640,478"  # along the bottom edge: boxes are cut at the frame as people leave
    frames = walk(1, 320, 400, 476, 10) + [[(1, 320, 480)]] * 3
    _, events = run(frames, lines=edge)
    assert crossings(events) == [("edge", 1, "in")]


def test_two_people_crossing_side_by_side_are_two():
    frames = [[(1, 300, y), (2, 345, y)] for y in np.linspace(150, 350, 20)]
    _, events = run(frames)
    assert sorted(crossings(events)) == [("door", 1, "in"), ("door", 2, "in")]


def test_an_id_switch_on_the_line_is_one_crossing():
    frames = walk(1, 320, 150, 238, 12) + walk(2, 321, 242, 350, 12)
    _, events = run(frames)
    assert crossings(events) == [("door", 2, "in")]


def test_a_track_whose_row_a_newcomer_took_still_counts_its_own_crossing():
    # Walker 1 goes unreported for two frames (held, not shown) as walker 2 appears beside it: walker 2 takes over
    # walker 1's state as it would for an id switch. Walker 1 is reported again on the line, where no side is clear
    # (a new track's first side would be the far one): someone else after all, it still counts its own crossing.
    frames = [[(1, 320, y)] for y in np.linspace(150, 220, 8)]
    frames += [[(1, 320, 225, 1, False), (2, 330, 200)], [(1, 320, 230, 1, False), (2, 330, 205)]]
    frames += [[(1, 320, 236 + 8 * i), (2, 330, 210 + 8 * i)] for i in range(18)]
    _, events = run(frames)
    assert sorted(crossings(events)) == [("door", 1, "in"), ("door", 2, "in")]


def test_an_unconfirmed_track_never_counts():
    frames = [[(1, 320, y, 1, False)] for y in np.linspace(150, 350, 20)]  # held, never reported (min_hits)
    _, events = run(frames)
    assert crossings(events) == []


def test_a_zone_entered_and_left_after_n_frames_says_how_long():
    zone = "queue:0.25,0.25,0.75,0.25,0.75,0.75,0.25,0.75"  # x 160..480, y 120..360
    frames = [[(1, 100 + 10 * i, 300)] for i in range(45)]  # enters at x 160 (frame 6), leaves at 480 (frame 38)
    counter, events = run(frames, lines=None, zones=zone, fps=10)
    kinds = [(e.event, e.name, e.id) for e in events]
    assert kinds == [("enter", "queue", 1), ("leave", "queue", 1)]
    assert events[1].dwell_s == pytest.approx(3.2)  # 32 frames inside at 10 FPS
    assert counter.counts["queue"] == {"enter": {"person": 1}, "leave": {"person": 1}}


def test_two_classes_are_counted_apart_and_a_line_can_count_one():
    frames = [[(1, 300, y, 1), (2, 350, y, 3)] for y in np.linspace(150, 350, 20)]
    counter, _ = run(frames)
    assert counter.counts["door"]["in"] == {"person": 1, "car": 1}
    cars = Line("cars", ((0.25, 0.5), (0.75, 0.5)), classes=("car",))
    counter, events = run(frames, lines=[cars])
    assert crossings(events) == [("cars", 2, "in")]


def test_a_camera_away_while_a_track_is_in_a_zone_leaves_it_once():
    zone = Zone("queue", ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)))
    counter, events = run([[(1, 320, 300)]] * 5, lines=None, zones=[zone], fps=10)
    assert [e.event for e in events] == ["enter"] and counter.occupancy() == {"queue": {"person": 1}}
    left = counter.resume()
    assert [(e.event, e.id) for e in left] == [("leave", 1)] and counter.resume() == []
    assert counter.occupancy() == {"queue": {}}
    again = [e for e in counter.update(tracks([(7, 320, 300)]), FRAME) + counter.update(tracks([(7, 320, 300)]), FRAME)]
    assert [(e.event, e.id) for e in again] == [("enter", 7)]


def test_a_track_the_tracker_ends_inside_a_zone_leaves_it():
    zone = "queue:0.25,0.25,0.75,0.25,0.75,0.75,0.25,0.75"
    frames = [[(1, 320, 300)]] * 5 + [[]] * 12
    _, events = run(frames, lines=None, zones=zone)
    assert [e.event for e in events] == ["enter", "leave"]


@pytest.mark.parametrize("kind, spec, says", [
    ("line", "door:0.5,0.5", "a line has 2 points, not 1"),
    ("zone", "z:0,0,1,1", "a zone has 3 to 64 points, not 2"),
    ("zone", "z:0,0,1,1,1,0,0,1", "its edges cross each other"),
    ("zone", "z:0,0,0.5,0.5,1,1", "its points enclose no area"),
    ("line", "door:-5,0,10,10", "outside the frame"),
    ("line", "door:0.1,x,0.2,0.3", "write it NAME:X1,Y1,X2,Y2 (numbers)"),
    ("line", {"name": "d", "points": [[0, 0], [1, 1]], "classes": ["unicorn"]}, "class 'unicorn': not a COCO class"),
    ("line", {"name": "d", "points": [[0, 0], [1, 1]], "anchor": "top"}, "anchor 'top': use bottom or center"),
    ("line", "a/b:0,0,1,1", "name it with up to 64 ASCII"),
])
def test_bad_shapes_are_one_line_naming_the_camera_and_the_value(kind, spec, says):
    with pytest.raises(CtrtError) as error:
        shapes_for("yard", **{f"{kind}s": [spec]})
    assert error.value.option == f"{kind}s" and str(error.value).startswith(f"yard: {kind} ") and says in str(error.value)


def test_a_duplicate_name_and_a_pixel_outside_the_frame_are_refused():
    with pytest.raises(CtrtError, match="yard: zone 'door': a line or zone of this camera has this name"):
        shapes_for("yard", lines=[DOOR], zones=["door:0,0,1,0,1,1"])
    counter = Counter(shapes_for("yard", lines=["far:10,10,900,10"]), "yard")
    with pytest.raises(CtrtError, match="yard: line 'far': a point lies outside the 640x480 frame") as error:
        counter.update(tracks([]), FRAME)
    assert error.value.option == "lines"


# --- every face: Python, Session, the command line, a site file ---------------------------------------------------

LINES = ["mid:0.5,0,0.5,1", "h:0,0.5,1,0.5"]
ZONES = ["left:0,0,0.5,0,0.5,1,0,1"]


@pytest.fixture(scope="module")
def counted(demo_onnx, tmp_path_factory):
    """A generated video tracked with two lines and a zone from Python: its Results' events and JSON lines."""
    import ctrt
    from ctrt.demo import make_demo_video

    folder = tmp_path_factory.mktemp("counted")
    video = make_demo_video(folder / "d.avi", frames=24, size=(320, 240), seed=3)
    with ctrt.load(demo_onnx, device="cpu") as model, \
            model.track(str(video), tracker="robust", lines=LINES, zones=ZONES, save_json=folder / "py.jsonl") as run:
        events = [[e.to_dict() for e in r.events] for r in run]
    return folder, video, events, run.counts["d"]


def test_a_runs_events_reach_the_json_lines_and_add_up_to_its_counts(counted):
    folder, _, events, counts = counted
    records = [__import__("json").loads(line) for line in (folder / "py.jsonl").read_text().splitlines()]
    assert [r["events"] for r in records] == events
    flat = [e for frame in events for e in frame]
    assert any(e["event"] == "cross" for e in flat) and any(e["event"] == "enter" for e in flat)
    for name, kinds in counts.items():
        for kind, per_class in kinds.items():
            if kind != "occupancy":
                said = [e for e in flat if e["name"] == name and kind in (e["event"], e.get("direction"))]
                assert sum(per_class.values()) == len(said), (name, kind)
    inside = counts["left"]["occupancy"]
    assert sum(inside.values()) == sum(counts["left"]["enter"].values()) - sum(counts["left"]["leave"].values())


@pytest.mark.slow
def test_a_session_counts_as_the_run_does(counted, demo_onnx):
    import cv2

    import ctrt

    _, video, events, counts = counted
    capture = cv2.VideoCapture(str(video))
    with ctrt.load(demo_onnx, device="cpu") as model:
        session = model.session(tracker="robust", lines=LINES, zones=ZONES, name="d", fps=10)
        mine = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            mine.append([e.to_dict() for e in session.update(frame).events])
    assert [[{k: v for k, v in e.items() if k != "dwell_s"} for e in f] for f in mine] == \
        [[{k: v for k, v in e.items() if k != "dwell_s"} for e in f] for f in events]
    assert session.counts == counts


@pytest.mark.slow
def test_the_command_line_and_a_site_file_count_as_python_does(counted, demo_onnx, tmp_path):
    from conftest import invoke

    folder, video, _, _ = counted
    flags = [a for line in LINES for a in ("--line", line)] + [a for zone in ZONES for a in ("--zone", zone)]
    result = invoke("run", demo_onnx, "--source", video, "--tracker-preset", "robust", *flags,
                    "--save-json", tmp_path / "cli.jsonl")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.jsonl").read_bytes() == (folder / "py.jsonl").read_bytes()
    assert "counts" in result.output and "inside now" in result.output
    site = tmp_path / "site.toml"
    site.write_text(f'[model]\npath = "{demo_onnx}"\ndevice = "cpu"\n[tracker]\npreset = "robust"\n'
                    f'[outputs]\nsave_dir = "out"\nrecordings = "fixed"\n'
                    f'[[camera]]\nname = "d"\nsource = "{video}"\nlines = {LINES!r}\nzones = {ZONES!r}\n'.replace("'", '"'))
    result = invoke("run", "--config", site, "--check")
    assert result.exit_code == 0 and "line mid, line h, zone left" in result.output.replace("\n", " "), result.output
    result = invoke("run", "--config", site)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "d.jsonl").read_bytes() == (folder / "py.jsonl").read_bytes()
    site.write_text(site.read_text().replace('"h:0,0.5,1,0.5"', '"h:0,0.5"'))
    result = invoke("run", "--config", site, "--check")
    assert result.exit_code == 2 and f"{site}: camera[0]: d: line 'h:0,0.5': a line has 2 points, not 1" in \
        result.output.replace("\n", " "), result.output
    site.write_text(site.read_text().replace('"h:0,0.5"', '"h:0,100,400,100"'))  # the video is 320x240
    result = invoke("run", "--config", site, "--check", "--overwrite")
    assert result.exit_code == 2 and f"{site}: d: line 'h': a point lies outside the 320x240 frame" in \
        result.output.replace("\n", " "), result.output


def test_python_refuses_bad_lines_naming_the_option(demo_onnx):
    import ctrt

    with ctrt.load(demo_onnx, device="cpu") as model:
        with pytest.raises(CtrtError) as error:
            model.track("x.avi", lines=["door:1,2"])
        assert error.value.option == "lines"
        with pytest.raises(CtrtError) as error:
            model.session(zones=[5])
        assert error.value.option == "zones"
        with pytest.raises(CtrtError, match="lines: no stream is named 'nope'"):
            model.track({"a": "x.avi"}, lines={"nope": ["door:0,0,1,1"]})


def test_metrics_show_each_lines_and_zones_counts():
    from ctrt.runtime.reports import RunReport, StreamReport
    from ctrt.site.metrics import metrics_text

    stream = StreamReport("door", counts={"mid": {"in": {"person": 3}, "out": {"car": 1}},
                                          "left": {"enter": {"person": 2}, "leave": {"person": 1},
                                                   "occupancy": {"person": 1}}})
    text = metrics_text(RunReport([stream]), {"door": _Camera()}, 10.0).decode()
    for line in ('ctrt_line_crossings_total{camera="door",class="person",direction="in",line="mid"} 3.0',
                 'ctrt_line_crossings_total{camera="door",class="car",direction="out",line="mid"} 1.0',
                 'ctrt_zone_events_total{camera="door",class="person",event="leave",zone="left"} 1.0',
                 'ctrt_zone_occupancy{camera="door",class="person",zone="left"} 1.0'):
        assert line in text, text


class _Camera:
    tracks, latency_sum, stage_sum = 0, 0.0, {}
    counts = np.zeros(10, np.int64)


@pytest.mark.slow
def test_a_restarted_service_goes_on_from_its_totals(counted, demo_onnx, tmp_path):
    """A site's dated recordings keep each camera's totals in counts.json: a second run of the same frames adds its
    counts to the first's, and who was in a zone when the first stopped is not inside any more."""
    import json

    import ctrt

    _, video, _, _ = counted
    site = tmp_path / "site.toml"
    site.write_text(f'[model]\npath = "{demo_onnx}"\ndevice = "cpu"\n[tracker]\npreset = "robust"\n'
                    f'[outputs]\nsave_dir = "out"\n'
                    f'[[camera]]\nname = "d"\nsource = "{video}"\nlines = {LINES!r}\nzones = {ZONES!r}\n'.replace("'", '"'))
    runs = []
    for _ in range(2):
        with ctrt.read_site(str(site)).track(max_frames=12) as run:
            for _ in run:
                pass
        runs.append(run.counts["d"])
    first = {name: {kind: per for kind, per in kinds.items() if kind != "occupancy"} for name, kinds in runs[0].items()}
    assert first["left"]["enter"]  # something to carry over
    kept = json.loads((tmp_path / "out" / "d" / "counts.json").read_text())
    assert kept == {name: {kind: {c: 2 * n for c, n in per.items()} for kind, per in kinds.items()}
                    for name, kinds in first.items()}
    assert runs[1]["left"]["occupancy"] == runs[0]["left"]["occupancy"]  # this run's, not the first's too
    (tmp_path / "out" / "d" / "counts.json").write_text("{not json")
    with ctrt.read_site(str(site)).track(max_frames=1) as run:
        for _ in run:
            pass
    assert (tmp_path / "out" / "d" / "counts.json.bad").read_text() == "{not json"


def test_nwrmse_is_ai_citys_weighted_error_of_cumulative_counts():
    from ctrt.eval.counting import nwrmse

    # Cumulative counts at frames 10, 20, ..., 100: true 1,2,...,2,3; counted 1,3,...,3,4: off by one from the
    # second segment on, weights 2/55 ... 10/55.
    assert nwrmse([5, 15, 95], [5, 15, 16, 95], 100) == pytest.approx(1 - (54 / 55) ** 0.5 / 3)
    assert nwrmse([5, 15, 95], [5, 15, 95], 100) == 1.0
    assert nwrmse([5], [1, 2, 3, 4, 5, 6], 100) == 0.0  # the error exceeds the true count
    assert nwrmse([], [], 100) == 1.0 and nwrmse([], [7], 100) is None


def test_counted_crossings_pair_with_true_ones_in_time_into_misses_and_extra_counts():
    from ctrt.eval.counting import count_scores, matched

    # 12 and 49 are 10 and 50 counted a little late or early; 70 counted nothing true; 101 and 102: one of them is a
    # double count; 200 was missed.
    truth, counted = [10, 50, 100, 200], [12, 49, 70, 101, 102]
    assert matched(truth, counted, 5) == 3 and matched(truth, counted, 1) == 2 and matched([], counted, 5) == 0
    assert matched([10, 11], [11, 12], 1) == 2  # one to one: 10-11 and 11-12, not 11-11 leaving 10 and 12 alone
    row = count_scores({"door in": truth}, {"door in": counted}, 300, 5)["door in"]
    assert (row["true"], row["counted"], row["missed"], row["extra"]) == (4, 5, 1, 2)
    assert row["error"] == row["extra"] - row["missed"]


def test_eval_counts_crossings_on_the_truth_and_on_each_tracker(tmp_path):
    import json

    from conftest import invoke

    assert invoke("make-data", "pedestrians", tmp_path / "peds", "--count", "1", "--frames", "300",
                  "--seed", "90").exit_code == 0
    result = invoke("eval", "--tracker-only", "--mot", tmp_path / "peds", "--tracker", "centertrack", "--tracker",
                    "robust", "--line", "mid:0.5,0.35,0.5,1", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    assert "counting, sequences combined" in result.output and "mid in" in result.output
    counts = json.loads((tmp_path / "e.json").read_text())["counts"]
    assert set(counts) == {"centertrack", "robust"}
    rows = counts["robust"]["combined"]
    assert set(rows) == {"mid in", "mid out"} and rows["mid in"]["true"] + rows["mid out"]["true"] > 5
    for row in rows.values():
        assert row["error"] == row["counted"] - row["true"] == row["extra"] - row["missed"]
        assert 0 <= row["nwRMSE"] <= 1 and row["missed"] >= 0 and row["extra"] >= 0
    assert "true / counted (missed, extra)" in result.output
    result = invoke("eval", "--tracker-only", "--mot", tmp_path / "peds", "--line", "mid:0.5")
    assert result.exit_code == 2 and "--mot: line 'mid:0.5': an odd count of coordinates" in result.output


def test_eval_counts_the_lines_a_generated_scene_carries(tmp_path):
    """make-data writes the scene's doorway and street lines beside each sequence; eval counts them unless --line
    names others, and refuses sequences whose lines disagree in one line."""
    import json

    from conftest import invoke

    from ctrt.eval.synthetic import SCENE_LINES

    peds = tmp_path / "peds"
    assert invoke("make-data", "pedestrians", peds, "--count", "2", "--frames", "120", "--seed", "90").exit_code == 0
    assert [(peds / seq / "lines.txt").read_text().split() for seq in ("PED-01", "PED-02")] == [list(SCENE_LINES)] * 2
    result = invoke("eval", "--tracker-only", "--mot", peds, "--tracker", "robust", "--json", tmp_path / "e.json",
                    "--plot", tmp_path / "e.png")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "e.png")).shape[1] == 1950  # a third panel: nwRMSE per line and direction
    rows = json.loads((tmp_path / "e.json").read_text())["counts"]["robust"]["combined"]
    assert set(rows) == {"door in", "door out", "street in", "street out"}
    (peds / "PED-02" / "lines.txt").write_text("street:0.6,0.38,0.6,1\n")
    result = invoke("eval", "--tracker-only", "--mot", peds)
    assert result.exit_code == 2 and "lines.txt files do not agree (they differ); give the lines with --line" in \
        result.output
    (peds / "PED-02" / "lines.txt").unlink()
    assert "(none in PED-02)" in invoke("eval", "--tracker-only", "--mot", peds).output
    result = invoke("eval", "--tracker-only", "--mot", peds, "--line", "mid:0.5,0.35,0.5,1", "--zone",
                    "kerb:0,0.8,1,0.8,1,1,0,1", "--json", tmp_path / "z.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "z.json").read_text())["counts"]["robust"]["combined"]
    assert set(rows) == {"mid in", "mid out", "kerb enter", "kerb leave"} and rows["kerb enter"]["true"] > 0
    assert all(row["error"] == row["extra"] - row["missed"] for row in rows.values())
    result = invoke("eval", "--tracker-only", "--mot", peds, "--line", "mid:0.5,0.35,0.5,1", "--zone",
                    "mid:0,0.8,1,0.8,1,1")
    assert result.exit_code == 2 and "--zone mid: a line has this name" in result.output
    info = peds / "PED-02" / "seqinfo.ini"
    info.write_text(info.read_text().replace("frameRate=30", "frameRate=fast"))
    result = invoke("eval", "--tracker-only", "--mot", peds, "--line", "mid:0.5,0.35,0.5,1")
    assert result.exit_code == 2 and f"{info}: frameRate 'fast': give a number" in result.output
    (peds / "PED-01" / "lines.txt").write_text("door:0.3\n")
    result = invoke("eval", "--tracker-only", "--mot", peds / "PED-01")
    assert result.exit_code == 2 and f"--mot {peds / 'PED-01'}: lines.txt: line 'door:0.3'" in result.output


def test_the_true_counts_are_crossings_seen_on_both_sides_as_trackeval_considers_boxes():
    """Ground truth rows marked not to be considered (a person hidden behind others) keep the person's place but
    are not seen: hidden while crossing and seen on both sides counts; never seen before the far side does not."""
    from ctrt.eval.counting import crossings

    frames = np.arange(1, 61)
    x = np.linspace(100, 540, 60)  # across a line at x = 320, at frame 30

    def person(track: int, y: float, considered: np.ndarray) -> np.ndarray:
        return np.stack([frames, np.full(60, track), x - 20, np.full(60, y - 100), np.full(60, 40),
                         np.full(60, 100), considered, np.ones(60), considered * 0.8 + 0.1], axis=1)

    hidden_on_the_line = (frames < 20) | (frames > 40)
    table = np.concatenate([person(1, 200, np.ones(60)), person(2, 300, hidden_on_the_line.astype(float)),
                            person(3, 400, (frames > 40).astype(float))])
    found = crossings(table, 60, shapes_for("cam", "door:0.5,0,0.5,1"), (640, 480))
    assert len(found["door out"]) == 2 and found["door in"] == []
    seen = table.copy()
    seen[:, 6] = 1  # every box considered: all three cross
    assert len(crossings(seen, 60, shapes_for("cam", "door:0.5,0,0.5,1"), (640, 480))["door out"]) == 3


def test_generated_scenes_have_groups_and_people_turning_back_on_the_lines():
    """The street scenes eval counts on: some arrive in twos and threes side by side (one partly behind another),
    some turn back near a line; those who cross a line both ways are people who turned back, once each way."""
    from ctrt.eval.counting import crossings
    from ctrt.eval.synthetic import HEIGHT, SCENE_LINES, WIDTH, pedestrian_truth

    length = 600
    table = pedestrian_truth(length, seed=7)
    first = {int(i): table[table[:, 1] == i][0] for i in np.unique(table[:, 1])}
    arrivals = {}
    for track, row in first.items():
        if row[0] > 1:  # arrived during the video: the frame and the side it came in at
            arrivals.setdefault((row[0], row[2] < WIDTH / 2), []).append(track)
    assert any(len(group) >= 2 for group in arrivals.values())
    foot_x = {track: table[table[:, 1] == track][:, 2] + table[table[:, 1] == track][:, 4] / 2 for track in first}
    turned = {track for track, x in foot_x.items() if (np.diff(x) > 0).any() and (np.diff(x) < 0).any()}
    assert turned
    found = crossings(table, length, shapes_for("scene", SCENE_LINES), (WIDTH, HEIGHT))
    assert found["street in"] and found["street out"]
    counter = Counter(shapes_for("scene", SCENE_LINES), "scene")
    ways: dict[tuple[int, str], list[str]] = {}
    for frame in range(1, length + 1):
        rows = table[table[:, 0] == frame]
        people = tracks([(int(r[1]), 0, 0) for r in rows])
        people.boxes[:] = np.stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]], 1)
        for e in counter.update(people, (HEIGHT, WIDTH, 3)):
            ways.setdefault((e.id, e.name), []).append(e.direction)
    both = {track for (track, _), directions in ways.items() if len(directions) > 1}
    assert both and both <= turned
    assert all(sorted(directions) in (["in"], ["out"], ["in", "out"]) for directions in ways.values())


@pytest.mark.slow
def test_eval_with_a_model_counts_what_a_run_counts(demo_onnx, tmp_path):
    """``ctrt eval MODEL --mot DIR --line/--zone`` counts each sequence as ``model.track`` with the same lines and
    zones does (the run's own counter, every class with ``--classes all``)."""
    import json

    import ctrt
    from conftest import invoke

    assert invoke("make-data", "demo-mot", tmp_path / "mot", "--count", "1", "--frames", "12", "--size", "320x240",
                  "--seed", "3").exit_code == 0
    flags = [a for line in LINES for a in ("--line", line)] + [a for zone in ZONES for a in ("--zone", zone)]
    result = invoke("eval", demo_onnx, "--mot", tmp_path / "mot", "--classes", "all", "--tracker", "robust", *flags,
                    "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    (scored,) = json.loads((tmp_path / "e.json").read_text())["counts"].values()
    with ctrt.load(demo_onnx, device="cpu") as model, \
            model.track({"DEMO-01": str(tmp_path / "mot" / "DEMO-01" / "img1")}, tracker="robust", lines=LINES,
                        zones=ZONES) as run:
        for _ in run:
            pass
    totals = {f"{name} {kind}": sum(per_class.values()) for name, kinds in run.counts["DEMO-01"].items()
              for kind, per_class in kinds.items() if kind != "occupancy"}
    assert sum(totals.values()) > 0
    assert {key: row["counted"] for key, row in scored["DEMO-01"].items()} == totals
