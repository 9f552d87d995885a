"""Every camera has a lifecycle: down at the start it joins when it comes up; lost mid-run it is reconnected for as
long as the run lasts, its tracks end and it starts anew with fresh ids; the other cameras lose nothing meanwhile;
its state is in the report, /readyz, /metrics, the MQTT status topic, systemd's STATUS and the live page."""

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
from ctrt.demo import DemoScene
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


def get(url: str) -> bytes:
    """The body of a GET, whatever its status (/readyz answers 503 while a camera is away)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read()
    except urllib.error.HTTPError as answer:
        return answer.read()


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


@pytest.mark.slow
@pytest.mark.service
@pytest.mark.browser
def test_network_cameras_down_20_s_at_the_start_or_60_s_mid_run_come_back(model, tmp_path, monkeypatch, chromium):
    """Three real MJPEG-over-HTTP cameras on loopback, read by OpenCV's FFmpeg, a real Mosquitto and Chromium.
    ``late`` is off for the first 20 s and joins when switched on; ``net`` is switched off for a minute mid-run and
    comes back with new ids. Meanwhile its state shows in /readyz, /metrics, the retained MQTT status topic and the
    live page, its tracks end once on MQTT while it is away, systemd hears READY with ``late`` still away, and
    ``steady`` loses no frame, its video (10 s segments, cut by wall time) playing as long as the run lasted."""
    import re
    import subprocess

    from mjpeg_camera import MjpegCamera
    from mqtt_broker import PASSWORD, USER, Broker, Subscriber, have_mosquitto

    chromium, chromium_env = chromium
    assert have_mosquitto(), "Mosquitto is missing: make test installs it (apt-get install mosquitto)"
    broker = Broker(tmp_path / "broker")
    broker.start()
    monkeypatch.setenv("CTRT_MQTT_USER", USER)
    monkeypatch.setenv("CTRT_MQTT_PASSWORD", PASSWORD)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    subscriber = Subscriber(broker, "site")
    late = MjpegCamera(fps=5, seed=9)  # not started: its port refuses connections
    net = MjpegCamera(fps=10).start()
    steady = MjpegCamera(fps=3, seed=8).start()
    states: dict[str, list[str]] = {"late": [], "net": []}
    metrics: dict[str, str] = {}
    frames: dict[str, list] = {"steady": [], "net": [], "late": []}
    page: list[str] = []
    timers = [threading.Timer(20.0, late.start)]
    timers[0].start()
    browser = None
    try:
        with model.track({"steady": steady.url, "net": net.url, "late": late.url}, http="127.0.0.1:0",
                         save_dir=tmp_path / "out", drop={"steady": "none"}, segment=10,
                         tracker="robust,min_hits=1", publish=f"mqtt://127.0.0.1:{broker.port}/site",
                         publish_rate=0) as run:
            for r in run:
                if not frames["steady"]:
                    began = time.monotonic()
                frames[r.stream].append(r)
                cameras = json.loads(get(run.http_url + "readyz"))["cameras"]
                assert cameras["steady"]["state"] == "live"
                for name, seen in states.items():
                    if not seen or seen[-1] != cameras[name]["state"]:
                        seen.append(cameras[name]["state"])
                        if name == "net":
                            metrics.setdefault(seen[-1], get(run.http_url + "metrics").decode())
                if r.stream == "net" and len(frames["net"]) == 5:
                    net.stop()  # off for a minute while the others go on
                    timers.append(threading.Timer(60.0, net.start))
                    timers[-1].start()
                if browser is None and timers[1:] and states["net"][-1] == "reconnecting":  # a person looks
                    browser = threading.Thread(target=lambda: page.append(subprocess.run(
                        [*chromium, "--disable-background-networking", "--virtual-time-budget=3000", "--dump-dom",
                         run.http_url], env=chromium_env, capture_output=True, text=True, timeout=60).stdout))
                    browser.start()
                if len(frames["net"]) >= 10 and run.report.streams[1].reconnects == 1 and len(frames["late"]) >= 3:
                    break
            ended = time.monotonic()
        if browser is not None:
            browser.join()
        time.sleep(0.5)
        with subscriber.lock:
            messages = list(subscriber.messages)
        told = retained_statuses(broker)
    finally:
        for timer in timers:
            timer.cancel()
        for camera in (late, net, steady):
            camera.stop()
        subscriber.close()
        broker.stop()
    steady_report, net_report, late_report = run.report.streams
    # /readyz: late down at the start, then joined; net live, away, back; /metrics said so while it was away
    assert states["late"][0] == "reconnecting" and states["late"][-1] == "live" and late_report.down_s >= 19
    away = states["net"][states["net"].index("live") + 1:]
    assert away[-2:] == ["reconnecting", "live"] and set(away[:-2]) <= {"stale"}, states
    assert net_report.reconnects == 1 and 60 <= net_report.down_s and not net_report.lost
    down = metrics["reconnecting"]
    assert 'ctrt_camera_up{camera="net"} 0.0' in down and 'ctrt_camera_up{camera="steady"} 1.0' in down
    assert 'ctrt_camera_state{camera="net",state="reconnecting"} 1.0' in down
    # MQTT: the status topic follows the camera; each track of before the loss ended once while it was away
    status = [(i, m["state"]) for i, (topic, m) in enumerate(messages) if topic == "site/net/status"
              and m["state"] != "starting"]
    assert [s for _, s in status[:3]] == ["live", "reconnecting", "live"], status
    before = {int(i) for r in frames["net"][:5] for i in r.ids}
    after = {int(i) for r in frames["net"][-3:] for i in r.ids}
    assert before and after and min(after) > max(before)  # it started anew
    ends = [m["id"] for topic, m in messages[:status[2][0]] if topic == "site/net/events" and m["event"] == "end"]
    assert before <= set(ends) and len(ends) == len(set(ends))
    assert told == {"site/net/status", "site/steady/status", "site/late/status"}  # retained: told at once
    # systemd: ready while late was still away; the page: net's tile greyed, since when
    notes = []
    while True:
        try:
            notes.append(listener.recv(4096).decode())
        except BlockingIOError:
            break
    assert "late reconnecting" in next(n for n in notes if "READY=1" in n)
    assert re.search(r'<figure id="tile-net" class="away">', page[0]), page[0][-2000:]
    assert re.search(r'id="state-net">reconnecting since \d\d:\d\d:\d\d, attempt \d+<', page[0])
    assert 'id="state-steady">live<' in page[0]
    # steady lost no frame, and its video plays as long as the run lasted
    out = tmp_path / "out"
    lines = (out / "steady.jsonl").read_text().splitlines()
    assert steady_report.dropped == 0 and [json.loads(line)["frame"] for line in lines] == \
        list(range(1, len(frames["steady"]) + 1))
    wall = ended - began
    segments = sorted(out.glob("steady-*.mp4"))
    lengths = [(lambda c: c.get(cv2.CAP_PROP_FRAME_COUNT) / c.get(cv2.CAP_PROP_FPS))(cv2.VideoCapture(str(p)))
               for p in segments]
    assert wall > 60 and abs(sum(lengths) - wall) < 0.02 * wall, (lengths, wall)
    assert all(abs(length - 10) <= 1 for length in lengths[:-1]), lengths


def retained_statuses(broker) -> set[str]:
    """The status topics a client connecting now is told at once (retained)."""
    import paho.mqtt.client as mqtt
    from mqtt_broker import PASSWORD, USER

    late: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late")
    client.username_pw_set(USER, PASSWORD)
    client.on_connect = lambda c, *a: c.subscribe("site/+/status", qos=1)
    client.on_message = lambda c, u, message: late.append(message.topic)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(set(late)) < 3:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return set(late)
