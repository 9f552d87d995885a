"""Every camera has a lifecycle: down at the start it joins when it comes up; lost mid-run it is reconnected for as
long as the run lasts, its tracks end and it starts anew with fresh ids; the other cameras lose nothing meanwhile;
its state is in the report, /readyz, /metrics and systemd's STATUS."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import cv2
import pytest

import ctrt
from ctrt.demo import DemoScene, make_demo_video
from ctrt.runtime.sources import FrameSource


class SwitchedCamera:
    """A camera with a power switch: while off it cannot be opened and an open capture stops reading."""

    def __init__(self, period: float = 0.05) -> None:
        self.on = threading.Event()
        self.period = period
        self.scene = DemoScene((320, 240), seed=7)
        self.served = 0

    def open(self, *args: object) -> _Capture:
        return _Capture(self)


class _Capture:
    def __init__(self, camera: SwitchedCamera) -> None:
        self.camera = camera
        self.opened = camera.on.is_set()

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        if not (self.opened and self.camera.on.is_set()):
            self.opened = False
            return False, None
        time.sleep(self.camera.period)
        self.camera.served += 1
        return True, self.camera.scene.frame(self.camera.served)[0]

    def get(self, prop):
        return 20.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.opened = False


@pytest.fixture(scope="module")
def model(demo_onnx):
    with ctrt.load(demo_onnx, device="cpu") as opened:
        yield opened


def follow(run, camera: SwitchedCamera, door_frames: int, watch=lambda: None) -> dict:
    """Drive the camera from the loop: off at the start, on after 5 door frames, off for 2 s after its 6th
    frame, on again, and the run ended after 6 frames more. Returns what each stream gave."""
    seen = {"door": [], "yard": []}
    off_at = None
    with run:
        for r in run:
            seen[r.stream].append(r)
            watch()
            yard = len(seen["yard"])
            if r.stream == "door" and len(seen["door"]) == 5:
                camera.on.set()
            if yard == 6 and off_at is None:
                camera.on.clear()
                off_at = time.monotonic()
            if off_at is not None and not camera.on.is_set() and time.monotonic() - off_at >= 2.0:
                camera.on.set()
            if yard >= 12:
                break
    return seen


def test_a_lone_camera_that_is_lost_comes_back_too(model, tmp_path):
    camera = SwitchedCamera()
    camera.on.set()
    source = FrameSource("0", backoff_s=0.1, capture_factory=camera.open)
    seen = []
    back = threading.Timer(1.0, camera.on.set)  # the loop has no frame to act on while its only camera is away
    with model.track({"yard": source}) as run:
        for r in run:
            seen.append(r.index)
            if len(seen) == 4:
                camera.on.clear()
                back.start()
            if len(seen) == 8:
                break
    back.join()
    assert seen == list(range(8)) and run.report.streams[0].reconnects == 1


def test_a_camera_given_up_on_says_so_and_fails_the_run(model):
    camera = SwitchedCamera()
    camera.on.set()
    source = FrameSource("0", reconnects=2, backoff_s=0.05, capture_factory=camera.open)
    with model.track({"yard": source}) as run:
        for r in run:
            if r.index == 2:
                camera.on.clear()
    stream = run.report.streams[0]
    assert stream.state == "failed" and stream.lost and run.report.exit_status == 1


def test_reconnects_takes_forever_or_a_count_on_every_face(demo_onnx, tmp_path):
    from conftest import invoke

    site = tmp_path / "site.toml"
    site.write_text(f'[model]\npath = "{demo_onnx}"\n[[camera]]\nname = "yard"\nsource = "0"\nreconnects = "forever"\n'
                    '[[camera]]\nname = "door"\nsource = "1"\nreconnects = 3\n')
    plan = ctrt.read_site(site).plan()
    assert [s.reconnects for s in plan.streams] == ["forever", 3]
    assert [s.reconnects for s in ctrt.read_site(site).plan(reconnects="7").streams] == [7, 7]
    assert ctrt.plan_run("0").streams[0].reconnects == "forever"
    site.write_text(site.read_text().replace('"forever"', '"always"'))
    result = invoke("run", "--config", site, "--check")
    assert result.exit_code == 2 and "camera[0].reconnects 'always': give forever or 0 or more attempts" in \
        result.output
    result = invoke("run", demo_onnx, "--source", "0", "--reconnects", "-2")
    assert result.exit_code == 2 and "--reconnects -2: give forever or 0 or more attempts" in result.output


@pytest.mark.service
def test_the_state_shows_in_readyz_metrics_and_systemd_status(model, tmp_path, monkeypatch):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    video = make_demo_video(tmp_path / "door.avi", frames=400, size=(320, 240), seed=9)
    camera = SwitchedCamera()
    yard = FrameSource("0", backoff_s=0.1, capture_factory=camera.open)
    run = model.track({"door": str(video), "yard": yard}, http=ctrt.HttpOptions("0", stale_after=5.0))
    states, metrics = [], []

    def watch() -> None:
        yard_state = json.loads(get(run.http_url + "readyz"))["cameras"]["yard"]["state"]
        if not states or states[-1] != yard_state:
            states.append(yard_state)
            metrics.append(get(run.http_url + "metrics").decode())

    follow(run, camera, 400, watch)
    assert states[:1] == ["reconnecting"] and "live" in states
    assert states[states.index("live"):][:3] == ["live", "reconnecting", "live"]
    down = next(m for s, m in zip(states, metrics) if s == "reconnecting")
    assert 'ctrt_camera_up{camera="yard"} 0.0' in down and 'ctrt_camera_state{camera="yard",state="reconnecting"} 1.0' \
        in down and 'ctrt_camera_up{camera="door"} 1.0' in down
    notes = []
    while True:
        try:
            notes.append(listener.recv(4096).decode())
        except BlockingIOError:
            break
    ready = next(n for n in notes if "READY=1" in n)
    assert "STATUS=1/2 cameras live; yard reconnecting" in ready  # ready while one camera is still away


def get(url: str) -> bytes:
    """The body of a GET, whatever its status (/readyz answers 503 while a camera is away)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read()
    except urllib.error.HTTPError as answer:
        return answer.read()


@pytest.mark.service
def test_a_camera_away_ends_its_tracks_on_mqtt_and_its_status_is_retained(model, tmp_path, monkeypatch):
    import paho.mqtt.client as mqtt
    from mqtt_broker import PASSWORD, USER, Broker, Subscriber, have_mosquitto

    assert have_mosquitto(), "Mosquitto is missing: make test installs it (apt-get install mosquitto)"
    broker = Broker(tmp_path / "broker")
    broker.start()
    monkeypatch.setenv("CTRT_MQTT_USER", USER)
    monkeypatch.setenv("CTRT_MQTT_PASSWORD", PASSWORD)
    subscriber = Subscriber(broker, "site")
    try:
        video = make_demo_video(tmp_path / "door.avi", frames=400, size=(320, 240), seed=10)
        camera = SwitchedCamera()
        yard = FrameSource("0", backoff_s=0.1, capture_factory=camera.open)
        run = model.track({"door": str(video), "yard": yard}, tracker="robust,min_hits=1",
                          publish=f"mqtt://127.0.0.1:{broker.port}/site", publish_rate=0)
        seen = follow(run, camera, 400)
        time.sleep(0.5)
        with subscriber.lock:
            messages = list(subscriber.messages)
        status = [(i, m["state"]) for i, (topic, m) in enumerate(messages) if topic == "site/yard/status"]
        assert [s for _, s in status[:4]] == ["reconnecting", "live", "reconnecting", "live"], status
        back = status[3][0]  # the message saying it is live again
        before = {int(i) for r in seen["yard"][:5] for i in r.ids}
        ends = [m["id"] for topic, m in messages[:back] if topic == "site/yard/events" and m["event"] == "end"]
        # each track of before the loss ended once, while the camera was away
        assert before and before <= set(ends) and len(ends) == len(set(ends))
        # A client that connects later is told each camera's state at once (the status is retained).
        late: list[str] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late")
        client.username_pw_set(USER, PASSWORD)
        client.on_connect = lambda c, *a: c.subscribe("site/+/status", qos=1)
        client.on_message = lambda c, u, message: late.append(message.topic)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(set(late)) < 2:
            time.sleep(0.05)
        client.loop_stop()
        client.disconnect()
        assert set(late) == {"site/door/status", "site/yard/status"}
    finally:
        subscriber.close()
        broker.stop()


@pytest.mark.slow
def test_a_camera_tracked_at_less_than_half_its_rate_is_said_once(model, caplog):
    camera = SwitchedCamera(period=0.005)
    camera.on.set()
    fast = FrameSource("0", capture_factory=lambda *a: _Fast(camera))
    started = time.monotonic()
    with model.track({"yard": fast}) as run:
        for _ in run:
            if time.monotonic() - started > 12:
                break
    stream = run.report.streams[0]
    said = [r.getMessage() for r in caplog.records if "while the camera gives 100" in r.getMessage()]
    assert stream.behind and stream.camera_fps == 100 and stream.dropped > 0 and len(said) == 1, said


class _Fast(_Capture):
    def get(self, prop):
        return 100.0 if prop == cv2.CAP_PROP_FPS else 0.0


@pytest.mark.browser
def test_the_live_page_shows_a_camera_away_greyed_with_since_when(model, tmp_path):
    import re
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: make test installs it (apt-get install chromium)"
    video = make_demo_video(tmp_path / "door.avi", frames=400, size=(320, 240), seed=11)
    camera = SwitchedCamera()  # off for the whole run
    yard = FrameSource("0", backoff_s=0.1, capture_factory=camera.open)
    dumped: list[str] = []
    with model.track({"door": str(video), "yard": yard}, http="0") as run:
        def dump() -> None:  # beside the run, as a person's browser is
            dumped.append(subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking", "--virtual-time-budget=3000",
                                          "--dump-dom", run.http_url], capture_output=True, text=True,
                                         timeout=60).stdout)

        browser = threading.Thread(target=dump)
        for r in run:
            if r.index == 3:
                browser.start()
            if r.index > 3 and not browser.is_alive():
                break
        browser.join()
    dom = dumped[0]
    assert re.search(r'<figure id="tile-yard" class="away">', dom), dom[-2000:]
    assert re.search(r'id="state-yard">reconnecting since \d\d:\d\d:\d\d, attempt \d+<', dom), dom[-2000:]
    assert re.search(r'<figure id="tile-door" class="">', dom) and 'id="state-door">live<' in dom


@pytest.mark.slow
def test_a_network_camera_down_20_s_at_the_start_and_60_s_mid_run_comes_back(model, tmp_path):
    """Two real MJPEG-over-HTTP cameras on loopback, read by OpenCV's FFmpeg. One is off for the first 20 s and
    joins when switched on; switched off for a minute mid-run, /readyz shows it away, then live again once it is
    back, with new ids. The other loses no frame meanwhile, and its video, cut into 10 s segments by wall time,
    plays as long as the run lasted."""
    from mjpeg_camera import MjpegCamera

    net = MjpegCamera(fps=10)  # not started: its port refuses connections
    steady = MjpegCamera(fps=3, seed=8).start()
    states: list[str] = []
    frames: dict[str, list] = {"steady": [], "net": []}
    timers = [threading.Timer(20.0, net.start)]
    timers[0].start()
    try:
        with model.track({"steady": steady.url, "net": net.url}, http="127.0.0.1:0", save_dir=tmp_path / "out",
                         drop={"steady": "none"},
                         segment=10, tracker="robust,min_hits=1") as run:
            for r in run:
                if not frames["steady"]:
                    began = time.monotonic()
                frames[r.stream].append(r)
                cameras = json.loads(get(run.http_url + "readyz"))["cameras"]
                assert cameras["steady"]["state"] == "live"
                if not states or states[-1] != cameras["net"]["state"]:
                    states.append(cameras["net"]["state"])
                if r.stream == "net" and len(frames["net"]) == 5:
                    net.stop()  # off for a minute while the other camera goes on
                    timers.append(threading.Timer(60.0, net.start))
                    timers[-1].start()
                if len(frames["net"]) >= 10 and run.report.streams[1].reconnects == 1:
                    break
            ended = time.monotonic()
    finally:
        for timer in timers:
            timer.cancel()
        net.stop()
        steady.stop()
    steady_report, net_report = run.report.streams
    assert states[0] == "reconnecting" and "live" in states  # down at the start, then joined
    away = states[states.index("live") + 1:]
    assert away[-2:] == ["reconnecting", "live"] and set(away[:-2]) <= {"stale"}, states  # away, then back
    assert net_report.reconnects == 1 and 60 <= net_report.down_s and not net_report.lost
    before = {int(i) for r in frames["net"][:5] for i in r.ids}
    after = {int(i) for r in frames["net"][-3:] for i in r.ids}
    assert before and after and min(after) > max(before)  # it started anew
    out = tmp_path / "out"
    lines = (out / "steady.jsonl").read_text().splitlines()
    assert steady_report.dropped == 0 and [json.loads(line)["frame"] for line in lines] == \
        list(range(1, len(frames["steady"]) + 1))
    wall = ended - began
    segments = sorted(out.glob("steady-*.mp4"))
    lengths = [(lambda c: c.get(cv2.CAP_PROP_FRAME_COUNT) / c.get(cv2.CAP_PROP_FPS))(cv2.VideoCapture(str(p)))
               for p in segments]
    assert wall > 85 and abs(sum(lengths) - wall) < 0.02 * wall, (lengths, wall)
    assert all(abs(length - 10) <= 1 for length in lengths[:-1]), lengths
