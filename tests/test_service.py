"""Running as a service: site files, tracks to a real Mosquitto, systemd notifications and the unit it prints."""

import functools
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ctrt
from ctrt.demo import DemoScene, make_demo_video
from ctrt.runtime.sources import FrameSource
from ctrt.site.mqtt import MqttOptions, MqttPublisher
from ctrt.site.file import read_site_file
from conftest import invoke, message_lines
from mqtt_broker import PASSWORD, USER, Broker, Subscriber, have_mosquitto, make_ca

pytestmark = pytest.mark.service  # Mosquitto, HTTP on loopback, systemd-analyze

SITE = """\
[model]
path = "{model}"
device = "cpu"
topk = 100

[tracker]
preset = "robust"
track_thresh = 0.3
min_hits = 1
gate = 1.0

[outputs]
save_dir = "out"
recordings = "fixed"                      # <camera>.mp4 ... in out/, read back by the tests

[[camera]]
name = "door"
source = "door.mp4"

[[camera]]
name = "yard"
source = "yard.mp4"
drop = "none"
[camera.tracker]
max_age = 10
"""


@pytest.fixture
def site(tmp_path, demo_onnx):
    make_demo_video(tmp_path / "door.mp4", frames=12, size=(320, 240), seed=1)
    make_demo_video(tmp_path / "yard.mp4", frames=12, size=(320, 240), seed=2)
    path = tmp_path / "site.toml"
    path.write_text(SITE.format(model=demo_onnx))
    return path


def test_a_site_file_runs_its_cameras_with_their_own_trackers(site, tmp_path):
    checked = invoke("run", "--config", site, "--check")
    assert checked.exit_code == 0, checked.output
    assert "2 cameras" in checked.output and "site file ok" in checked.output and not (tmp_path / "out").exists()
    parsed = read_site_file(site)
    assert parsed.tracker_for("yard").max_age == 10 and parsed.tracker_for("door").max_age != 10
    result = invoke("run", "--config", site, "--max-frames", 5)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "door.jsonl", "door.mp4", "door.txt", "yard.jsonl", "yard.mp4", "yard.txt"]
    assert len((tmp_path / "out" / "door.jsonl").read_text().splitlines()) == 5
    # A command-line option overrides the file: here the output folder.
    assert invoke("run", "--config", site, "--max-frames", 2, "--save-dir", tmp_path / "elsewhere").exit_code == 0
    assert len((tmp_path / "elsewhere" / "yard.jsonl").read_text().splitlines()) == 2


def test_the_python_api_runs_a_site_file(site, tmp_path):
    with ctrt.read_site(str(site)).track(max_frames=3, save_dir=tmp_path / "py") as run:
        streams = [r.stream for r in run]
    assert sorted(set(streams)) == ["door", "yard"] and len(streams) == 6
    assert len((tmp_path / "py" / "yard.jsonl").read_text().splitlines()) == 3


CAMERA = '[[camera]]\nname = "x"\nsource = "0"\n'
MISTAKES = {
    "unknown key": ('[model]\nsize = 3\n' + CAMERA, "model.size: unknown key"),
    "wrong type": ('[model]\ntopk = "many"\n' + CAMERA, "model.topk: 'many' is not an integer"),
    "toml syntax": ('[model]\ndevice = "cpu"\n[[camera]\n', "not valid TOML: "),
    "duplicate camera": (CAMERA + CAMERA, "camera[1].name: 'x' is already the name of another camera"),
    "missing source file": ('[[camera]]\nname = "a"\nsource = "nowhere.mp4"\n',
                            "camera[0].source: nowhere.mp4 does not exist"),
    "unknown tracker option": (CAMERA + '[camera.tracker]\nage = 3\n', "camera[0].tracker.age: unknown key"),
    "tracker value out of range": ('[tracker]\ngate = 3.0\n' + CAMERA,
                                   "tracker.gate 3: give more than 0, up to 1 (a share of the box size)"),
    "unknown section": ('[cameras]\nname = "a"\n', "cameras: unknown section"),
    "no camera": ('[model]\ndevice = "cpu"\n', "camera: give at least one [[camera]]"),
    "bad camera name": ('[[camera]]\nname = "a/b"\nsource = "0"\n', "camera[0].name: 'a/b': use up to 100 ASCII letters"),
    "camera output not a boolean": (CAMERA + '[camera.outputs]\nsave = "no"\n',
                                    "camera[0].outputs.save: 'no' is not true or false"),
    "missing model": ('[model]\npath = "gone.onnx"\n' + CAMERA, "model.path: "),
    "missing password file": ('[outputs]\npublish_password_file = "secret"\n' + CAMERA,
                              "outputs.publish_password_file: "),
    "CA that is not a certificate": ('[outputs]\npublish = "mqtts://127.0.0.1/x"\npublish_ca = "/etc/passwd"\n' + CAMERA,
                                     "outputs.publish_ca /etc/passwd: not a PEM CA certificate"),
    "CA that is a device": ('[outputs]\npublish = "mqtts://127.0.0.1/x"\npublish_ca = "/dev/zero"\n' + CAMERA,
                            "outputs.publish_ca /dev/zero: a character device, not a file"),
    "CA for a plain broker": ('[outputs]\npublish = "mqtt://127.0.0.1/x"\npublish_ca = "/etc/passwd"\n' + CAMERA,
                              "a CA is for a TLS broker; give an mqtts:// URL"),
    "broker port 0": ('[outputs]\npublish = "mqtt://127.0.0.1:0/x"\n' + CAMERA, "the port is not a number from 1"),
    "control character in the prefix": ('[outputs]\npublish = "mqtt://127.0.0.1/a\\u0001b"\n' + CAMERA,
                                        "the topic prefix may not hold control characters"),
    "prefix beyond MQTT's topic length": (f'[outputs]\npublish = "mqtt://127.0.0.1/{"p" * 70_000}"\n' + CAMERA,
                                          "the topic prefix is 70000 bytes; at most 1024"),
}


@pytest.mark.parametrize("text, message", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_site_file_mistake_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "site.toml"
    path.write_text(text)
    result = invoke("run", "--config", path, "--check")
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}: ") and message in lines[0], lines[0]
    if "syntax" in message:
        assert "line 3" in lines[0]


# ----------------------------------------------------------------------------------------------------------- MQTT
@pytest.fixture
def broker(tmp_path):
    assert have_mosquitto(), "Mosquitto is missing: make test installs it (apt-get install mosquitto)"
    running = Broker(tmp_path / "broker")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("CTRT_MQTT_USER", USER)
    monkeypatch.setenv("CTRT_MQTT_PASSWORD", PASSWORD)


def lifecycle_matches_json_lines(events: list[dict], jsonl: Path) -> None:
    """Every reported track: ``new`` once on its first shown frame, ``end`` once; boxes equal the JSON lines'."""
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    shown = {(r["frame"], t["tracking_id"]): t for r in records for t in r["results"] if t["shown"]}
    ids = {tid for _, tid in shown}
    assert ids, "the demo model found nothing to track"
    assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))  # no gap, no duplicate
    for tid in ids:
        mine = [e for e in events if e["id"] == tid]
        assert [e["event"] for e in mine].count("new") == 1 and [e["event"] for e in mine].count("end") == 1
        assert mine[0]["event"] == "new" and mine[-1]["event"] == "end"
        assert mine[0]["frame"] == min(f for f, t in shown if t == tid)
    for event in events:
        if event["event"] != "end":
            track = shown[(event["frame"], event["id"])]
            assert np.allclose(event["box"], track["bbox"], atol=0.006) and event["class"] == track["class"]
    assert {e["id"] for e in events} == ids


def test_a_subscriber_receives_every_tracks_lifecycle_as_the_json_lines_have_it(broker, credentials, site,
                                                                                tmp_path):
    subscriber = Subscriber(broker, "site")
    try:
        result = invoke("run", "--config", site, "--publish", f"mqtt://127.0.0.1:{broker.port}/site",
                        "--publish-rate", 0, "--publish-frames")
        assert result.exit_code == 0, result.output
        assert "published" in result.output and "not sent" not in result.output
        time.sleep(0.5)
        for camera in ("door", "yard"):
            lifecycle_matches_json_lines(subscriber.events(camera), tmp_path / "out" / f"{camera}.jsonl")
            frames = [m for t, m in subscriber.messages if t == f"site/{camera}/frames"]
            records = (tmp_path / "out" / f"{camera}.jsonl").read_text().splitlines()
            assert [json.dumps(f["record"]) for f in frames] == records
        statuses = [m for t, m in subscriber.messages if t == "site/status"]
        assert statuses[0] == "online" and statuses[-1] == "offline"
    finally:
        subscriber.close()


@functools.lru_cache(maxsize=1)
def _tracked_video(demo_onnx: Path) -> list:
    video = make_demo_video(Path(demo_onnx).parent / "publisher.mp4", frames=40, size=(320, 240), seed=5)
    with ctrt.load(demo_onnx, device="cpu") as model:
        return list(model.track(str(video), tracker="robust,min_hits=1"))


def frames_of(demo_onnx, count):
    """Results of the demo model tracking a generated video (its first ``count`` frames, tracked once for every
    test that asks), for driving a publisher directly."""
    return _tracked_video(Path(demo_onnx))[:count]


def test_a_broker_away_for_seconds_loses_nothing_that_fits_the_buffer(broker, credentials, demo_onnx):
    results = frames_of(demo_onnx, 40)
    subscriber = Subscriber(broker, "cams")
    publisher = MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{broker.port}/cams", rate_hz=0)).start()
    sink = publisher.sink("door")
    try:
        for i, r in enumerate(results):
            if i == 10:
                broker.stop()
            if i == 30:
                time.sleep(3)  # several seconds away
                broker.start()
            sink.write(r)
            time.sleep(0.01)
        sink.close()
        report = publisher.close()
        time.sleep(1.0)
    finally:
        subscriber.close()
    made = publisher._events["door"].seq["events"]
    seqs = sorted({e["seq"] for e in subscriber.events("door")})  # duplicates (QoS 1 redelivery) dropped by seq
    assert report.dropped == 0 and report.unsent == 0 and report.reconnects >= 1
    assert made > 20 and seqs == list(range(1, made + 1))


def test_a_full_buffer_drops_the_oldest_and_counts_them_exactly(broker, credentials, demo_onnx):
    results = frames_of(demo_onnx, 30)
    subscriber = Subscriber(broker, "small")
    publisher = MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{broker.port}/small", rate_hz=0, buffer=5)).start()
    sink = publisher.sink("door")
    try:
        broker.stop()
        for r in results:
            sink.write(r)
        time.sleep(0.3)  # the publisher thread has queued them all
        broker.start()
        sink.close()
        report = publisher.close()
        time.sleep(1.0)
    finally:
        subscriber.close()
    seqs = sorted({e["seq"] for e in subscriber.events("door")})
    missing = set(range(1, seqs[-1] + 1)) - set(seqs)
    assert report.dropped > 0 and len(missing) == report.dropped and report.unsent == 0
    assert min(seqs) == report.dropped + 1  # the oldest went first


def test_a_scheme_that_does_not_fit_the_port_is_said_in_one_line(broker, credentials):
    """mqtts:// to a plain port: refused at the start, naming the fix; mqtt:// to a TLS port (no MQTT answer): one
    warning naming the fix, and the run goes on."""
    plain = MqttPublisher(MqttOptions(f"mqtts://127.0.0.1:{broker.port}/x", ca=broker.ca))
    with pytest.raises(ctrt.CtrtError, match=f"is 127.0.0.1:{broker.port} a plain MQTT port\\? then give mqtt://"):
        plain.start()
    lines: list[str] = []
    MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{broker.tls_port}/x"), notify=lines.append).start().close()
    assert len([line for line in lines if "is it a TLS port? then give mqtts://" in line]) == 1, lines


def test_publishing_never_waits_on_the_tracking_thread(broker, credentials, demo_onnx):
    results = frames_of(demo_onnx, 20)
    publisher = MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{broker.port}/fast", rate_hz=0, flush_s=0.2)).start()
    sink = publisher.sink("door")
    broker.stop()  # a broker gone: writes still return at once
    times = []
    for r in results:
        start = time.perf_counter()
        sink.write(r)
        times.append(time.perf_counter() - start)
    report = publisher.close()
    # A write that waited on the gone broker would take its connect timeout (seconds); 50 ms leaves room for a
    # loaded 2-core machine's scheduling.
    assert max(times) < 0.05 and report.unsent > 0


def test_bad_credentials_an_untrusted_certificate_and_no_broker(broker, site, tmp_path, monkeypatch):
    url = f"mqtt://127.0.0.1:{broker.port}/site"
    monkeypatch.setenv("CTRT_MQTT_USER", USER)
    monkeypatch.setenv("CTRT_MQTT_PASSWORD", "wrong")
    result = invoke("run", "--config", site, "--publish", url)
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "the broker refused the connection" in lines[0], lines
    assert not (tmp_path / "out").exists()

    monkeypatch.setenv("CTRT_MQTT_PASSWORD", PASSWORD)
    other_ca, _ = make_ca(tmp_path / "other", "other")
    result = invoke("run", "--config", site, "--publish", f"mqtts://127.0.0.1:{broker.tls_port}/site",
                    "--publish-ca", other_ca)
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "certificate is not trusted" in lines[0], lines
    result = invoke("run", "--config", site, "--publish", f"mqtts://127.0.0.1:{broker.tls_port}/site",
                    "--publish-ca", broker.ca, "--max-frames", 2)
    assert result.exit_code == 0 and "published" in result.output, result.output

    broker.stop()
    result = invoke("run", "--config", site, "--publish", url, "--max-frames", 2, "--overwrite")  # out/ has files
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "is not reachable" in warnings[0] and "not sent when the run ended" in result.output

    for bad, message in ((f"http://127.0.0.1:{broker.port}/x", "give mqtt://HOST"),
                         (f"mqtt://me:pw@127.0.0.1:{broker.port}/x", "no credentials in the URL"),
                         (f"mqtt://127.0.0.1:{broker.port}/x/#", "wildcards")):
        result = invoke("run", "--config", site, "--publish", bad)
        lines = message_lines(result.output)
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: --publish") \
            and message in lines[0], lines


# -------------------------------------------------------------------------------------------------------- systemd
def test_systemd_hears_ready_watchdog_and_stopping(site, tmp_path, monkeypatch):
    address = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(0.2)
    heard: list[str] = []
    done = threading.Event()

    def listen() -> None:  # as systemd does: reading while the run goes on, until it has ended
        while True:
            try:
                heard.extend(listener.recv(4096).decode().splitlines())
            except socket.timeout:
                if done.is_set():
                    return

    reader = threading.Thread(target=listen)
    reader.start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # a ping every 10 ms
    try:
        result = invoke("run", "--config", site)
    finally:
        done.set()
        reader.join()
        listener.close()
    assert result.exit_code == 0, result.output
    assert heard.count("READY=1") == 1 and "WATCHDOG=1" in heard and "STOPPING=1" in heard
    ready, stopping = heard.index("READY=1"), heard.index("STOPPING=1")
    assert ready < stopping and "WATCHDOG=1" in heard[ready:stopping]
    assert any(line.startswith("STATUS=2/2 cameras live") for line in heard)


def test_a_listener_that_never_reads_does_not_stall_the_run(site, tmp_path, monkeypatch):
    address = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    monkeypatch.setenv("WATCHDOG_USEC", "2000")
    try:
        assert invoke("run", "--config", site, "--max-frames", 6).exit_code == 0
    finally:
        listener.close()


def analyze(*args: object) -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: make test installs systemd"
    return subprocess.run([tool, *map(str, args)], capture_output=True, text=True)


def test_the_printed_unit_is_one_systemd_accepts_and_rates_safe(site, tmp_path):
    result = invoke("service-unit", "--config", site, "--watchdog", 20)
    assert result.exit_code == 0, result.output
    unit = result.output
    for line in ("Type=notify", "WatchdogSec=20", "Restart=on-failure", "KillSignal=SIGTERM", "TimeoutStopSec=60",
                 f'"run" "--config" "{site.resolve()}"', "User=ctrt", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ProtectHome=read-only", "DeviceAllow=char-video4linux rw",
                 f'ReadWritePaths="-{(tmp_path / "out").resolve()}"'):
        assert line in unit, line
    path = tmp_path / "ctrt-site.service"
    path.write_text(unit)
    verified = analyze("verify", path)
    problems = [line for line in (verified.stdout + verified.stderr).splitlines() if str(path) in line]
    assert verified.returncode == 0 and not problems, verified.stdout + verified.stderr
    security = analyze("security", "--offline=true", path)
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert exposure <= 4.0, security.stdout[-3000:]


def test_a_hostile_folder_name_stays_one_value_in_the_unit(tmp_path, demo_onnx):
    folder = tmp_path / 'a b %h $x "q" \\e'
    folder.mkdir()
    site = folder / "site.toml"
    site.write_text(f'[model]\npath = "{demo_onnx}"\n[outputs]\nsave_dir = "out"\n[[camera]]\nname = "x"\nsource = "0"\n')
    result = invoke("service-unit", "--config", site)
    assert result.exit_code == 0, result.output
    path = tmp_path / "hostile.service"
    path.write_text(result.output)
    verified = analyze("verify", path)
    problems = [line for line in (verified.stdout + verified.stderr).splitlines() if str(path) in line]
    assert verified.returncode == 0 and not problems, verified.stdout + verified.stderr
    assert sum(line.startswith("ExecStart=") for line in result.output.splitlines()) == 1
    # systemd reads a quoted word back as the name it was: a missing executable under such a name is reported by it
    from ctrt.site.systemd import quoted

    probe = tmp_path / "probe.service"
    missing = str(tmp_path / "no such %h $x")
    probe.write_text(f"[Service]\nExecStart={quoted(missing, 'executable')}\n")
    assert f"Command {missing} is not executable" in analyze("verify", probe).stderr
    # a line break would start a directive of its own: refused in one line, nothing printed
    crafted = tmp_path / "x\nExecStartPre=id\n.toml"
    crafted.write_text(site.read_text())
    refused = invoke("service-unit", "--config", crafted)
    lines = message_lines(refused.output)
    assert refused.exit_code == 2 and len(lines) == 1 and "ExecStartPre=id\n" not in refused.output
    assert lines[0].startswith("error: --config ") and "line break" in lines[0]


# ----------------------------------------------------------------------------------------------------------- HTTP
class StallingCamera:
    """A live camera that serves ``frames`` frames every ``period`` seconds, then hangs until ``resume`` is set."""

    def __init__(self, frames: int, period: float, resume: threading.Event) -> None:
        self.frames, self.period, self.resume = frames, period, resume
        self.served = 0
        self.hanging = False
        self.scene = DemoScene((320, 240), seed=3)

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.served == self.frames:
            self.hanging = True
            self.resume.wait(30)
            return False, None
        time.sleep(self.period)
        self.served += 1
        return True, self.scene.frame(self.served)[0]

    def get(self, prop):
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


def camera(frames: int, period: float, release: threading.Event, made: list | None = None) -> FrameSource:
    def open_camera(*args):
        capture = StallingCamera(frames, period, release)
        if made is not None:
            made.append(capture)
        return capture
    return FrameSource("0", reconnects=0, capture_factory=open_camera)


def get(url: str, token: str | None = None, bearer: bool = True) -> tuple[int, bytes]:
    request = urllib.request.Request(url if token is None or bearer else f"{url}?token={token}")
    if token and bearer:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""  # the run has ended and its server with it


def test_metrics_and_readiness_follow_the_run(demo_onnx):
    release = threading.Event()
    statuses: list[int] = []
    stalled: dict[str, object] = {}
    cameras: list[StallingCamera] = []
    with ctrt.load(demo_onnx, device="cpu") as model:
        run = model.track({"door": camera(12, 0.12, release, cameras), "yard": camera(12, 0.12, release, cameras)},
                          drop="none", tracker="robust,min_hits=1", http=ctrt.HttpOptions("0", stale_after=0.6))
        base = run.http_url
        statuses.append(get(base + "readyz")[0])  # no frame yet
        stop = threading.Event()

        def poll() -> None:  # beside the run: once both cameras hang, /readyz names them; then let them end
            while not stop.is_set():
                code, text = get(base + "readyz")
                statuses.append(code)
                hung = len(cameras) == 2 and all(c.hanging for c in cameras)
                states = json.loads(text)["cameras"] if code else {}
                if hung and code == 503 and not release.is_set() and \
                        {name: c["state"] for name, c in states.items()} == {"door": "stale", "yard": "stale"}:
                    stalled["healthz"] = get(base + "healthz")[0]
                    release.set()
                time.sleep(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        seen = {"door": 0, "yard": 0}
        try:
            with run:
                for r in run:
                    seen[r.stream] += 1
                    if sum(seen.values()) == 10:
                        code, text = get(base + "metrics")
                        assert code == 200
                        families = {f.name: f for f in text_string_to_metric_families(text.decode())}
                        frames = {s.labels["camera"]: s.value for s in families["ctrt_frames"].samples
                                  if s.name == "ctrt_frames_total"}
                        assert frames == seen
                        assert {"ctrt_fps", "ctrt_tracks_active", "ctrt_latency_seconds", "ctrt_stage_seconds",
                                "ctrt_dropped", "ctrt_reconnects"} <= set(families)
                        status = json.loads(get(base + "streams")[1])
                        assert {s["name"]: s["frames"] for s in status["streams"]} == seen
        finally:
            stop.set()
            release.set()
            poller.join()
    first_ready = statuses.index(200)
    assert statuses[0] == 503 and 503 in statuses[first_ready:] and stalled == {"healthz": 503}
    assert run.report.frames == sum(seen.values()) == 24


def test_beyond_loopback_only_with_a_token_and_every_route_asks_for_it(demo_onnx, site, tmp_path, monkeypatch):
    result = invoke("run", "--config", site, "--http", "0.0.0.0:0")
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "needs a token" in lines[0], lines
    token = "t0k3n-for-the-tests"
    monkeypatch.setenv("CTRT_HTTP_TOKEN", token)
    release = threading.Event()
    with ctrt.load(demo_onnx, device="cpu") as model:
        with model.track({"door": camera(6, 0.02, release)}, http="0.0.0.0:0") as run:
            base = run.http_url.replace("0.0.0.0", "127.0.0.1")
            for route in ("", "metrics", "healthz", "readyz", "streams", "streams/door.jpg", "streams/door.mjpg"):
                assert get(base + route)[0] == 401, route
                assert get(base + route, "wrong")[0] == 401, route
            next(run)
            assert get(base + "streams", token)[0] == 200 and get(base + "metrics", token, bearer=False)[0] == 200
            release.set()


def request(url: str, method: str = "GET", host: str | None = None, token: str | None = None) -> int:
    """The status of one request (its Host header as given)."""
    import http.client

    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    headers = {**({"Host": host} if host else {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    connection.request(method, parts.path or "/", headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_loopback_server_answers_only_its_own_names_and_only_get(demo_onnx):
    release = threading.Event()
    with ctrt.load(demo_onnx, device="cpu") as model:
        with model.track({"door": camera(4, 0.02, release)}, http="0") as run:
            base = run.http_url
            port = urllib.parse.urlsplit(base).port
            for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.nip.io:{port}", f"localhost:{port + 1}"):
                assert request(base + "streams", host=host) == 421, host
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
                assert request(base + "streams", host=host) == 200, host
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                assert request(base + "streams", method) == 405, method
            release.set()
            for _ in run:
                pass


def test_a_token_must_be_one_nobody_guesses(tmp_path, site, monkeypatch):
    for bad in ("   ", "", "short", "sixteen chars ok", "tab\tinside-the-token"):
        with pytest.raises(ctrt.CtrtError) as error:
            ctrt.HttpOptions("0.0.0.0:0", token=bad or None)
        assert error.value.option in ("http_token_file", "http")
    secret = tmp_path / "token"
    secret.write_text("   \n")
    result = invoke("run", "--config", site, "--http", "0.0.0.0:0", "--http-token-file", secret)
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    monkeypatch.setenv("CTRT_HTTP_TOKEN", " " * 20)
    with pytest.raises(ctrt.CtrtError) as error:
        ctrt.HttpOptions("127.0.0.1:0")
    assert error.value.option == "http_token_file"


def test_stream_names_cannot_reach_the_page_or_leave_their_folder(demo_onnx, tmp_path):
    from ctrt.site.live_page import page_html

    with ctrt.load(demo_onnx, device="cpu") as model:
        for name in ("</script><script>alert(1)</script>", "../../escaped", "/etc/x", "a/b", "", "a#", "x" * 101):
            with pytest.raises(ctrt.CtrtError) as error:
                model.track({name: "clip.avi"}, save_dir=tmp_path / "out", http="0")
            assert error.value.option == "source", name
    assert not (tmp_path / "out").exists() and not list(tmp_path.parent.glob("escaped*"))
    page = page_html(["a</script><b>"], 5.0).decode()
    assert "</script><b>" not in page and "&lt;/script&gt;&lt;b&gt;" in page


def test_the_live_view_is_served_as_mjpeg_only_while_watched(demo_onnx):
    release = threading.Event()
    pictures: list[bytes] = []

    def view(url: str) -> None:  # a viewer on its own thread, as a browser is
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            while len(pictures) < 3:
                line = answer.readline()
                if line.startswith(b"Content-Length:"):
                    answer.readline()
                    pictures.append(answer.read(int(line.split(b":")[1])))

    with ctrt.load(demo_onnx, device="cpu") as model:
        with model.track({"door": camera(400, 0.03, release)}, http=ctrt.HttpOptions("0", fps=20)) as run:
            next(run)
            status = json.loads(get(run.http_url + "streams")[1])
            assert status["streams"][0]["pictures_encoded"] == 0  # nobody watched: nothing encoded
            viewer = threading.Thread(target=view, args=(run.http_url + "streams/door.mjpg",))
            viewer.start()
            for _ in run:
                if not viewer.is_alive():
                    break
            viewer.join()
            release.set()
    assert len(pictures) == 3
    assert all(cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3) for p in pictures)


@pytest.mark.browser
def test_chromium_renders_a_tile_per_camera_with_moving_pictures(demo_onnx, tmp_path, chromium):
    chromium, chromium_env = chromium
    release = threading.Event()
    shots: list[np.ndarray] = []
    with ctrt.load(demo_onnx, device="cpu") as model:
        cameras = {"door": camera(400, 0.03, release), "yard": camera(400, 0.03, release)}
        with model.track(cameras, tracker="robust,min_hits=1", http=ctrt.HttpOptions("0", fps=10)) as run:
            url = run.http_url

            def screenshot(index: int) -> None:
                path = tmp_path / f"page{index}.png"
                subprocess.run([*chromium, "--hide-scrollbars", "--window-size=700,300", f"--screenshot={path}",
                                "--virtual-time-budget=2500", url], env=chromium_env, capture_output=True, timeout=60)
                shots.append(cv2.imread(str(path)))

            taker = threading.Thread(target=lambda: [screenshot(i) for i in range(2)])
            taker.start()
            for _ in run:
                if not taker.is_alive():
                    break
            taker.join()
            page = get(url)[1].decode()
            release.set()
    assert page.count("<figure id=") == 2
    assert len(shots) == 2 and all(s is not None for s in shots)
    for shot in shots:
        assert shot.std() > 20  # pictures, not a blank page
    assert np.abs(shots[0].astype(int) - shots[1].astype(int)).mean() > 1  # and they moved


def test_a_broker_that_comes_up_after_the_start_gets_the_run_from_then_on(broker, credentials, demo_onnx, caplog):
    subscriber = Subscriber(broker, "late")
    broker.stop()
    release = threading.Event()
    try:
        with ctrt.load(demo_onnx, device="cpu") as model:
            with model.track({"door": camera(40, 0.1, release)}, drop="none", tracker="robust,min_hits=1",
                             publish=MqttOptions(f"mqtt://127.0.0.1:{broker.port}/late", rate_hz=0)) as run:
                for r in run:
                    if r.index == 5:
                        broker.start()
                    if r.index == 39:  # its last frame: the camera ends now instead of hanging
                        release.set()
        time.sleep(1.0)
    finally:
        subscriber.close()
    warnings = [r.message for r in caplog.records if r.levelname == "WARNING" and "MQTT" in r.message]
    assert len(warnings) == 1 and "is not reachable" in warnings[0]
    report = run.report.published
    events = subscriber.events("door")
    assert report.sent > 0 and events and report.unsent == 0
    assert sorted({e["seq"] for e in events}) == list(range(1, max(e["seq"] for e in events) + 1))


def test_a_port_in_use_is_one_line_and_nothing_is_written(site, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("run", "--config", site, "--http", f"127.0.0.1:{port}")
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "cannot listen there" in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_camera_can_stay_out_of_the_files_and_the_broker(broker, credentials, site, tmp_path):
    site.write_text(site.read_text() + "[camera.outputs]\nsave = false\npublish = false\n")  # the yard camera
    checked = invoke("run", "--config", site, "--check")
    assert checked.exit_code == 0 and "files, mqtt" not in checked.output.split("yard")[1].splitlines()[0]
    subscriber = Subscriber(broker, "part")
    try:
        result = invoke("run", "--config", site, "--max-frames", 4, "--publish-rate", 0,
                        "--publish", f"mqtt://127.0.0.1:{broker.port}/part")
        assert result.exit_code == 0, result.output
        time.sleep(0.5)
    finally:
        subscriber.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["door.jsonl", "door.mp4", "door.txt"]
    assert subscriber.events("door") and not subscriber.events("yard")
    assert {t.split("/")[1] for t, _ in subscriber.messages} == {"door", "status"}


# ------------------------------------------------------------------------------------------- one plan, every face
FACE_SITE = """\
[model]
path = "{model}"
device = "cpu"
threads = 1

[tracker]
preset = "robust"
min_hits = 1

[outputs]
save_dir = "out"
recordings = "fixed"
publish = "mqtt://127.0.0.1:{broker}/{prefix}"
publish_rate = 0
http = "127.0.0.1:{http}"

[[camera]]
name = "door"
source = "door.avi"
drop = "none"
lines = ["mid:0.5,0,0.5,1"]
zones = ["left:0,0,0.5,0,0.5,1,0,1"]

[[camera]]
name = "yard"
source = "yard.avi"
drop = "none"
[camera.tracker]
max_age = 5
"""
ROUTES = ("/", "/healthz", "/metrics", "/streams")


def poll_routes(base: str, done: threading.Event, seen: dict[str, int]) -> None:
    """Each route's first 200 (or its last answer) while the run serves them."""
    while not done.is_set() and not all(seen.get(r) == 200 for r in ROUTES):
        for route in ROUTES:
            if seen.get(route) != 200:
                code, _ = get(base + route)
                if code:
                    seen[route] = code
        time.sleep(0.05)


def test_a_site_file_runs_the_same_from_the_cli_and_from_python(broker, credentials, demo_onnx, tmp_path):
    """``ctrt run --config`` and ``ctrt.read_site(...).track()``: the same files byte for byte, the same events on
    the broker (kinds, ids and order per camera), the same HTTP routes served."""
    from mqtt_broker import free_port

    faces = {}
    for face in ("cli", "python"):
        folder = tmp_path / face
        folder.mkdir()
        for seed, name in enumerate(("door", "yard")):
            make_demo_video(folder / f"{name}.avi", frames=12, size=(320, 240), seed=60 + seed)
        port = free_port()
        site = folder / "site.toml"
        site.write_text(FACE_SITE.format(model=demo_onnx, broker=broker.port, prefix=face, http=port))
        subscriber = Subscriber(broker, face)
        done, routes = threading.Event(), {}
        poller = threading.Thread(target=poll_routes, args=(f"http://127.0.0.1:{port}", done, routes))
        poller.start()
        try:
            if face == "cli":
                result = subprocess.run([str(Path(sys.executable).with_name("ctrt")), "run", "--config", str(site)],
                                        capture_output=True, text=True, timeout=300)
                assert result.returncode == 0, result.stderr
            else:
                with ctrt.read_site(str(site)).track() as run:
                    for _ in run:
                        pass
                assert run.report.exit_status == 0
            time.sleep(0.5)
        finally:
            done.set()
            poller.join()
            subscriber.close()
        faces[face] = (folder / "out", {camera: [(e["event"], e["id"]) for e in subscriber.events(camera)]
                                        for camera in ("door", "yard")}, routes)
        counted = [e for e in subscriber.events("door") if e["event"] in ("cross", "enter", "leave")]
        assert counted and all(e["counts"] for e in counted)  # with the running totals of its line or zone
        records = [json.loads(line) for line in (folder / "out" / "door.jsonl").read_text().splitlines()]
        assert [(e["event"], e["id"]) for e in counted] == [(e["event"], e["id"]) for r in records
                                                            for e in r["events"]]
    (cli_out, cli_events, cli_routes), (py_out, py_events, py_routes) = faces["cli"], faces["python"]
    names = sorted(p.name for p in cli_out.iterdir())
    assert names == [camera + suffix for camera in ("door", "yard") for suffix in (".jsonl", ".mp4", ".txt")]
    assert names == sorted(p.name for p in py_out.iterdir())
    for name in names:
        assert (cli_out / name).read_bytes() == (py_out / name).read_bytes(), name
    assert cli_events == py_events and all(cli_events.values())
    assert cli_routes == py_routes == dict.fromkeys(ROUTES, 200)


def test_an_ipv6_loopback_bind_serves_and_hung_up_viewers_are_one_line_at_most(demo_onnx, capfd, caplog):
    release = threading.Event()
    with ctrt.load(demo_onnx, device="cpu") as model:
        with model.track({"door": camera(100_000, 0.01, release)}, http="[::1]:0") as run:
            base = run.http_url
            assert base.startswith("http://[::1]:") and get(base + "streams")[0] == 200
            next(run)
            port = urllib.parse.urlsplit(base).port
            for _ in range(20):  # viewers that ask for the live view and leave at once
                connection = socket.create_connection(("::1", port))
                connection.sendall(f"GET /streams/door.mjpg HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n".encode())
                connection.close()
            for _ in run:
                if run.report.frames >= 10:
                    break
            release.set()
    hung_up = [r for r in caplog.records if "hung up" in r.getMessage()]
    assert len(hung_up) <= 1 and "Traceback" not in capfd.readouterr().err


def test_a_site_checks_its_transport_and_resolves_its_globs(tmp_path, demo_onnx):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    site = tmp_path / "site.toml"
    site.write_text(f'[model]\npath = "{demo_onnx}"\ntransport = "jpeg:0"\n'
                    '[[camera]]\nname = "x"\nsource = "frames/*.png"\n')
    result = invoke("run", "--config", site, "--check")
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "model.transport 'jpeg:0'" in lines[0], result.output
    site.write_text(site.read_text().replace('transport = "jpeg:0"\n', ""))
    plan = ctrt.read_site(site).plan()
    assert plan.streams[0].source == str(tmp_path / "frames/*.png")


def test_an_existing_file_is_a_file_whatever_its_name(demo_onnx, tmp_path):
    for name in ("a!b.avi", "clip[1].avi"):
        video = make_demo_video(tmp_path / name, frames=3, size=(320, 240), seed=2)
        source = FrameSource(str(video))
        assert source.kind == "video" and source.total == 3
        assert invoke("run", demo_onnx, "--source", video, "--save-json", tmp_path / f"{name}.jsonl").exit_code == 0


def test_no_output_replaces_a_file_the_run_reads(tmp_path, demo_onnx):
    make_demo_video(tmp_path / "clip.avi", frames=3, size=(320, 240), seed=4)
    token = tmp_path / "door.txt"  # the token file lies where camera door's MOT file would go
    token.write_text("a-token-of-twenty-chars\n")
    site = tmp_path / "door.jsonl"  # and the site file where its JSON lines would go
    site.write_text(f'[model]\npath = "{demo_onnx}"\n[outputs]\nsave_dir = "."\nrecordings = "fixed"\n'
                    f'http = "127.0.0.1:0"\nhttp_token_file = "door.txt"\n[[camera]]\nname = "door"\nsource = "clip.avi"\n')
    before = {p.name: p.read_bytes() for p in (token, site)}
    result = invoke("run", "--config", site)
    lines = message_lines(result.output)
    assert result.exit_code == 2 and len(lines) == 1 and "is also an input" in lines[0], result.output
    assert {p.name: p.read_bytes() for p in (token, site)} == before and not (tmp_path / "door.mp4").exists()


def test_a_publisher_that_fails_says_so_and_the_run_goes_on(broker, credentials, demo_onnx, monkeypatch):
    results = frames_of(demo_onnx, 5)
    lines: list[str] = []
    publisher = MqttPublisher(MqttOptions(f"mqtt://127.0.0.1:{broker.port}/broken"), notify=lines.append)

    def fail() -> None:
        raise ValueError("a topic the broker cannot take")

    monkeypatch.setattr(publisher, "_convert", fail)
    publisher.start()
    sink = publisher.sink("door")
    for r in results:
        sink.write(r)  # returns at once, as always
    report = publisher.close()
    assert [line for line in lines if "MQTT publisher stopped (ValueError: a topic the broker cannot take)" in line]
    assert "stopped early (ValueError" in report.text()
