"""``ctrt run`` and ``ctrt demo``: options into ``Model.track``, then its progress and report rendered."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import CtrtError
from .app import command, console, error, errors, next_steps, notes, size, titled, warning

# Library parameters whose flag is not simply "--" + the name.
RUN_FLAGS = {"tracker": "--tracker-preset", "threshold": "--track-thresh", "topk": "--topk"}


def follow(run: Any) -> None:
    """Consume the run with a progress display: a bar with ETA for one finite stream, else a status line."""
    total = run.expected_frames if len(run.streams) == 1 else None
    columns = [TextColumn("{task.description}")] + (
        [BarColumn(), MofNCompleteColumn(), TextColumn("ETA"), TimeRemainingColumn()] if total else [])
    start = shown = time.perf_counter()
    frames: dict[str, int] = {}
    try:
        with Progress(*columns, console=console, transient=True) as progress, run:
            task = progress.add_task("tracking", total=total)
            for r in run:
                frames[r.stream] = r.index + 1
                now = time.perf_counter()
                if now - shown < 0.25:
                    continue
                shown, count = now, sum(frames.values())
                fps = count / (now - start)
                if len(run.streams) > 1:
                    text = (f"{len(frames)} streams | {count} frames | {fps:.1f} FPS in all | "
                            + " ".join(f"{name} {n}" for name, n in frames.items()))
                elif total:  # beside a bar the line stays short
                    text = f"{fps:.1f} FPS, {int(r.shown.sum())} tracks"
                else:
                    stages = " ".join(f"{k} {v:.1f}" for k, v in r.speed_ms.items())
                    text = f"frame {count} | {fps:.1f} FPS | ms: {stages} | tracks {int(r.shown.sum())}"
                progress.update(task, completed=count, description=text)
    except KeyboardInterrupt:
        pass  # the report has it: outputs are complete, the exit code says which signal


def finish(run: Any, save_dir: Optional[Path]) -> None:
    """The run's report, then its exit status: 0 at the end of every source, 1 for a lost or failed stream,
    128 + signal when stopped by Ctrl-C/SIGTERM/SIGHUP (outputs complete in every case)."""
    report = run.report
    if len(report.streams) == 1 and save_dir is None:
        stream = report.streams[0]
        console.print(f"{stream.frames} frames, {stream.tracks} track ids, {stream.fps:.2f} FPS on {run.model.name}"
                      + (f", {stream.skipped} unreadable frames skipped" if stream.skipped else "")
                      + (f", {stream.reconnects} reconnects" if stream.reconnects else ""), soft_wrap=True)
        if stream.stage_ms:
            console.print("mean ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in stream.stage_ms.items()),
                          soft_wrap=True)
        if stream.dropped:
            console.print(f"{stream.dropped} stale frames dropped to stay live (--drop latest)")
        written = [path for path in run.outputs if path.exists()]
        segments = [path for path in written if path.suffix.lower() in (".mp4", ".avi")]
        if len(segments) > 1:  # a segmented video: one line for the series
            total = sum(p.stat().st_size for p in segments) / 1e6
            console.print(f"wrote {len(segments)} video segments {escape(str(segments[0]))} ... "
                          f"{escape(segments[-1].name)} ({total:.1f} MB)", soft_wrap=True)
        for path in written:
            if path not in segments or len(segments) == 1:
                console.print(f"wrote {escape(str(path))} ({size(path)})", soft_wrap=True)
    else:
        _streams_table(run)
    for stream in report.streams:
        if stream.error and len(report.streams) > 1:
            warning(f"{stream.name}: {stream.error}")
    if report.published is not None:
        console.print(report.published.text(), soft_wrap=True)
    if report.interrupted:
        errors.print(f"interrupted ({report.interrupted}): {report.frames} frames written")
    lost = [s.name for s in report.streams if s.lost]
    if lost:
        error(f"{'source' if len(report.streams) == 1 else 'streams'} lost and not back after the reconnect "
              f"attempts: {', '.join(lost)}")
    if report.exit_status:
        raise typer.Exit(report.exit_status)


def _streams_table(run: Any) -> None:
    report = run.report
    table = titled(f"{len(report.streams)} streams on {escape(run.model.name)}: {report.frames} frames in "
                   f"{report.seconds:.1f} s ({report.frames / max(report.seconds, 1e-9):.2f} FPS in all), "
                   f"{report.batches} model calls")
    for column in ("stream", "frames", "dropped", "skipped", "reconnects", "track ids", "FPS", "latency p50 ms"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for stream in report.streams:
        latency = stream.latency_percentiles()
        table.add_row(escape(stream.name), str(stream.frames), str(stream.dropped), str(stream.skipped),
                      str(stream.reconnects), str(stream.tracks), f"{stream.fps:.2f}",
                      f"{latency['p50']:.0f}" if latency else "-")
    console.print(table)
    written = [s.name for s in report.streams if s.frames]
    if run.outputs and written:
        folder = run.outputs[0].parent
        console.print(f"wrote <name>.mp4, .txt and .jsonl for {', '.join(map(escape, written))} to "
                      f"{escape(str(folder))}", soft_wrap=True)


# Tracker options of ``ctrt run`` by their ``TrackerConfig.from_options`` names (a site file's [tracker] keys).
TRACKER_FLAGS = {"track_thresh": "track_thresh", "pre_thresh": "pre_thresh", "new_thresh": "new_thresh",
                 "max_age": "max_age", "hungarian": "hungarian", "tracker_preset": "preset", "coast": "coast",
                 "low_thresh": "low_thresh", "min_hits": "min_hits", "gate": "gate"}


def given_in(ctx: typer.Context) -> Any:
    """Whether the user gave an option (not its default): only those override a site file."""
    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    return given


@command(flags=RUN_FLAGS)
def run(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Argument(help="exported .onnx (ONNX Runtime), .engine (TensorRT), a .pth checkpoint (PyTorch), or a model on Triton: triton://HOST:PORT/MODEL (gRPC), http://HOST:PORT/MODEL (default with --config: the site's)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("-s", "--source", help="camera index, video, folder, glob, URL or GStreamer pipeline; repeat for several streams (default: camera 0)")] = None,
    sources: Annotated[Optional[Path], typer.Option(help="a text file of sources, one a line")] = None,
    save_dir: Annotated[Optional[Path], typer.Option(help="per stream: <name>.mp4, <name>.txt (MOT) and <name>.jsonl here")] = None,
    drop: Annotated[Optional[str], typer.Option(help="latest: keep only the newest frame when behind (default for cameras and streams); none: every frame (default for files)")] = None,
    overlap: Annotated[bool, typer.Option(help="several streams: pre-process and track one batch while another runs on the model")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda (ONNX Runtime also: tensorrt)")] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="ONNX Runtime intra-op threads (0 = all cores)")] = 0,
    input_size: Annotated[Optional[str], typer.Option(help="HxW for a .pth checkpoint (default 512x512; an exported model carries its own)")] = None,
    k: Annotated[int, typer.Option("-k", "--topk", min=1, max=3840, help="detections kept per frame")] = 100,
    track_thresh: Annotated[float, typer.Option(min=0.0, max=1.0, help="score threshold for output, new tracks and pre_hm")] = 0.3,
    pre_thresh: Annotated[Optional[float], typer.Option(help="pre_hm threshold in [0, 1] (at least --track-thresh)")] = None,
    new_thresh: Annotated[Optional[float], typer.Option(help="new-track threshold in [0, 1] (at least --track-thresh)")] = None,
    tracker_preset: Annotated[str, typer.Option(help="centertrack (CenterTrack's tracker, exactly) or robust (keeps ids through misses and occlusions); the options below override it")] = "centertrack",
    max_age: Annotated[Optional[int], typer.Option(help="frames an unmatched track survives (-1: none, as CenterTrack)")] = None,
    hungarian: Annotated[Optional[bool], typer.Option("--hungarian/--greedy", help="optimal assignment, or CenterTrack's greedy matching")] = None,
    coast: Annotated[Optional[bool], typer.Option("--coast/--no-coast", help="a track kept by --max-age moves on at its smoothed velocity, yielding to tracks seen last frame")] = None,
    low_thresh: Annotated[Optional[float], typer.Option(help="BYTE: detections from this score up to --track-thresh continue tracks left unmatched")] = None,
    min_hits: Annotated[Optional[int], typer.Option(help="report a track from its Nth matched frame on (1: at once, as CenterTrack; at most 100)")] = None,
    gate: Annotated[Optional[float], typer.Option(min=0.01, max=1.0, help="a detection continues a track only within this share of the box size, or 4x the offsets' measured miss if more (1: as CenterTrack)")] = None,
    save_video: Annotated[Optional[Path], typer.Option(help="annotated video (.mp4 or .avi)")] = None,
    save_mot: Annotated[Optional[Path], typer.Option(help="MOTChallenge txt")] = None,
    save_json: Annotated[Optional[Path], typer.Option(help="JSON lines, one frame per line, CenterTrack's fields")] = None,
    segment: Annotated[Optional[float], typer.Option(min=1.0, max=86400.0, help="write videos as numbered files of this many seconds (v-00000.mp4, ...): a crash loses at most one (default: one file)")] = None,
    show: Annotated[bool, typer.Option(help="show a window (needs GUI OpenCV)")] = False,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="stop after N frames (per stream)")] = None,
    reconnects: Annotated[int, typer.Option(min=0, help="reopen attempts when a live source drops")] = 5,
    allow_partial: Annotated[bool, typer.Option(help="load a checkpoint whose keys do not all match")] = False,
    shm: Annotated[bool, typer.Option(help="Triton on this host: pass tensors through system shared memory")] = False,
    transport: Annotated[Optional[str], typer.Option(help="a stateful Triton model (ctrt triton --stateful): send frames raw (uint8, default) or as jpeg[:QUALITY] (1-100, default 90)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="a site file (TOML): [model], [tracker], [[camera]] and [outputs]; options given here override it")] = None,
    check: Annotated[bool, typer.Option(help="with --config: check the site file and exit, opening no model or camera")] = False,
    publish: Annotated[Optional[str], typer.Option(help="mqtt://HOST[:PORT]/PREFIX or mqtts://...: track events to an MQTT broker (credentials: CTRT_MQTT_USER, CTRT_MQTT_PASSWORD)")] = None,
    publish_ca: Annotated[Optional[Path], typer.Option(help="mqtts: the CA certificate that signed the broker's (default: the system's)")] = None,
    publish_rate: Annotated[float, typer.Option(min=0.0, max=1000.0, help="update messages per track and second at most (0: every frame)")] = 2.0,
    publish_buffer: Annotated[int, typer.Option(min=1, max=10_000_000, help="messages kept while the broker is away (the oldest dropped first, counted)")] = 10_000,
    publish_frames: Annotated[bool, typer.Option(help="also publish every frame's tracks to PREFIX/<camera>/frames")] = False,
    http: Annotated[Optional[str], typer.Option(help="PORT (loopback) or HOST:PORT: serve /metrics, /healthz, /readyz, /streams and the live view at / (beyond loopback only with CTRT_HTTP_TOKEN or --http-token-file)")] = None,
    http_token_file: Annotated[Optional[Path], typer.Option(help="a file whose first line is the HTTP token (bearer header or ?token=)")] = None,
    stale_after: Annotated[float, typer.Option(min=0.5, max=86400.0, help="/readyz: seconds without a frame before a camera is stale")] = 10.0,
    http_fps: Annotated[float, typer.Option(min=0.1, max=60.0, help="live view: pictures a second at most, encoded only while watched")] = 5.0,
) -> None:
    """Track objects on cameras, videos, streams or image folders: one stream, or several batched on one model."""
    from ..api import load
    from ..runtime.streams import read_sources_file
    from ..runtime.tracker import TrackerConfig
    from ..service.http import HttpOptions
    from ..service.mqtt import MqttOptions
    from ..service.site import read_secret, read_site

    given = given_in(ctx)
    if check and config is None:
        raise CtrtError("--check checks a site file: give it with --config")
    specs = [*(source or []), *(read_sources_file(sources) if sources else [])]
    options: dict[str, Any] = {"max_frames": max_frames, "save_video": save_video, "save_mot": save_mot, "save_json": save_json,
               "show": show, "overlap": overlap, "reconnects": reconnects, "protect": [sources] if sources else ()}
    if config is not None:
        site = read_site(config)
        cli_tracker = {TRACKER_FLAGS[n]: v for n, v in tracker_options(locals()).items() if given(n)}
        loading = site.load_options(**{n: v for n, v in (("device", device), ("threads", threads),
                                                          ("input_size", input_size), ("transport", transport))
                                         if given(n)})
        planned = site.track_options(cli_tracker, **{n: v for n, v in (("topk", k), ("save_dir", save_dir),
                                                                      ("segment", segment)) if given(n)},
                                     **({"drop": drop} if given("drop") else {}),
                                     **({"source": specs} if specs else {}))
        if specs:  # the command line's sources replace the site's cameras, with the site's tracker
            planned["tracker"] = TrackerConfig.from_options(**{**site.tracker, **cli_tracker})
            planned["drop"], planned["published"] = drop, None
            planned["save_dir"] = save_dir if given("save_dir") else site.outputs.get("save_dir")
        planned["http"] = site.http_options(**{n: v for n, v in (("http", http), ("stale_after", stale_after),
                                                                 ("http_fps", http_fps)) if given(n)})
        if planned["http"] is not None and http_token_file is not None:
            planned["http"] = replace(planned["http"], token=read_secret(http_token_file, "--http-token-file"))
        planned["publish"] = site.publish_options(**{n: v for n, v in (
            ("publish", publish), ("publish_ca", publish_ca), ("publish_rate", publish_rate),
            ("publish_buffer", publish_buffer), ("publish_frames", publish_frames)) if given(n)})
        model = model or site.model.get("path")
        if model is None:
            raise CtrtError(f"{config}: model.path: missing, and no MODEL given")
        if check:
            render_site_check(site, model, planned)
            return
    else:
        if model is None:
            raise CtrtError("give a MODEL (or a site file with --config)")
        loading = {"device": device, "threads": threads, "input_size": input_size, "transport": transport}
        planned = {"source": specs or ["0"], "topk": k, "drop": drop, "save_dir": save_dir, "segment": segment,
                   "tracker": TrackerConfig.from_options(track_thresh, pre_thresh, new_thresh, max_age, hungarian,
                                                         tracker_preset, coast, low_thresh, min_hits, gate),
                   "publish": MqttOptions(publish, publish_ca, publish_rate, publish_buffer, publish_frames)
                   if publish else None,
                   "http": HttpOptions(http, read_secret(http_token_file, "--http-token-file") if http_token_file
                                       else None, stale_after, http_fps) if http else None}
    with load(model, allow_partial=allow_partial, shm=shm, reconnects=reconnects, **loading) as opened:
        run = opened.track(**planned, **options)
        notes(opened.notes)  # after the run's checks: a refused run says one line
        if run.http_url:
            console.print(f"serving {run.http_url} (metrics, health, live view)", soft_wrap=True)
        follow(run)
    finish(run, planned["save_dir"])


def tracker_options(values: dict[str, Any]) -> dict[str, Any]:
    """The tracker options among ``run``'s parameters, by parameter name."""
    return {name: values[name] for name in TRACKER_FLAGS}


def render_site_check(site: Any, model: str, planned: dict[str, Any]) -> None:
    console.print(f"{escape(str(site.path))}: {len(site.cameras)} cameras, model {escape(model)}", soft_wrap=True)
    from dataclasses import asdict

    from ..runtime.tracker import TrackerConfig

    defaults = TrackerConfig()
    table = titled("cameras")
    for column in ("camera", "source", "drop", "tracker", "outputs"):
        table.add_column(column)
    trackers = planned["tracker"]
    for camera in site.cameras:
        tracker = trackers[camera.name] if isinstance(trackers, dict) else trackers
        changed = {k: v for k, v in asdict(tracker).items() if getattr(defaults, k) != v}
        folders = planned["save_dir"]
        saved = folders.get(camera.name) if isinstance(folders, dict) else folders
        published = planned.get("publish") and camera.name in (planned.get("published") or [camera.name])
        table.add_row(escape(camera.name), escape(camera.source), camera.drop or "auto",
                      ", ".join(f"{k}={v}" for k, v in changed.items()) or "CenterTrack's",
                      ", ".join(o for o, on in (("files", saved), ("mqtt", published)) if on) or "-")
    console.print(table)
    folders = {str(f) for f in (planned["save_dir"].values() if isinstance(planned["save_dir"], dict)
                                 else [planned["save_dir"]]) if f}
    outputs = [f"save_dir {', '.join(sorted(folders))}" if folders else None,
               f"publish {planned['publish'].url}" if planned.get("publish") else None,
               f"http {planned['http'].bind}" if planned.get("http") else None]
    console.print("outputs: " + (", ".join(o for o in outputs if o) or "none"), soft_wrap=True)
    console.print("site file ok")


@command
def demo(
    checkpoint: Annotated[Optional[Path], typer.Option(help="use your checkpoint instead of the built-in demo model")] = None,
    input_size: Annotated[str, typer.Option(help="HxW of the model (the demo model is fitted at 256x256)")] = "256x256",
    frames: Annotated[int, typer.Option(min=2, max=100000, help="length of the generated video")] = 30,
    streams: Annotated[int, typer.Option(min=1, max=64, help="generated videos tracked at once, batched on one model")] = 1,
    output_dir: Annotated[Path, typer.Option(help="where the videos, MOT txt and JSON go")] = Path("runs/demo"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
) -> None:
    """The whole chain on a fresh machine: generated video -> exported model -> tracker -> saved outputs."""
    from ..api import load
    from ..demo import DEMO_RUN_OPTIONS, demo_model, demo_tracker, make_demo_video
    from ..outputs import check_outputs
    from ..runtime.streams import save_paths
    from ..runtime.tracker import TrackerConfig
    from ..sizes import check_memory, parse_input_size

    h, w = parse_input_size(input_size)
    check_memory(h, w, streams)
    names = ["input"] if streams == 1 else [f"input-{i}" for i in range(streams)]
    planned = {f"--output-dir {output_dir}: {n}.mp4": output_dir / f"{n}.mp4" for n in names}
    if streams == 1:
        planned.update({f"--output-dir {output_dir}: tracks{p.suffix}": output_dir / f"tracks{p.suffix}"
                        for p in save_paths(output_dir, "tracks")})
    else:
        planned.update({f"--output-dir {output_dir}: {p.name}": p for n in names
                        for p in save_paths(output_dir / "tracks", n)})
    check_outputs(planned, [checkpoint])
    videos = [make_demo_video(output_dir / f"{name}.mp4", frames, seed=i) for i, name in enumerate(names)]
    console.print(f"wrote {len(videos)} generated video(s) of {frames} frames to {escape(str(output_dir))}: "
                  "photographs of a cat, a cup, a rocket and an astronaut gliding over a blurred backdrop",
                  soft_wrap=True)
    with console.status("exporting the demo model and checking it against PyTorch"):
        onnx_path, exported = demo_model(checkpoint, h, w)
    if exported is not None:
        worst = max(r.max_abs for r in exported.parity)
        console.print(f"wrote {escape(str(onnx_path))}; ONNX Runtime vs PyTorch max abs error {worst:.1e}",
                      soft_wrap=True)
    tracker = TrackerConfig() if checkpoint else demo_tracker()  # a checkpoint: CenterTrack's defaults
    if checkpoint is None:
        console.print(f"tracker: {' '.join(DEMO_RUN_OPTIONS)}, the demo model's operating point (ctrt run uses "
                      "CenterTrack's defaults unless told)", soft_wrap=True)
    with load(onnx_path, device=device) as model:
        if streams > 1:
            run = model.track(dict(zip(names, map(str, videos))), tracker=tracker, save_dir=output_dir / "tracks")
        else:
            video, mot, jsonl = save_paths(output_dir, "tracks")
            run = model.track(str(videos[0]), tracker=tracker, save_video=video, save_mot=mot, save_json=jsonl)
        notes(model.notes)
        follow(run)
    finish(run, output_dir / "tracks" if streams > 1 else None)
    next_steps(f"ctrt run {onnx_path} --source 0 --save-video out.mp4", f"ctrt inspect {onnx_path}")


@command
def service_unit(
    config: Annotated[Path, typer.Option(help="the site file the service runs (ctrt run --config)")],
    watchdog: Annotated[int, typer.Option(min=5, max=3600, help="WatchdogSec: seconds without a tracked frame before systemd restarts the run")] = 30,
    stop_timeout: Annotated[int, typer.Option(min=10, max=3600, help="TimeoutStopSec: time to finish the outputs after SIGTERM")] = 60,
    user: Annotated[Optional[str], typer.Option(help="the account the service runs as")] = None,
) -> None:
    """Print a systemd unit running the site as a service: Type=notify, watchdog, restart on failure."""
    from ..service.site import read_site
    from ..service.systemd import service_unit as unit

    read_site(config)  # a unit for a site file that does not check would fail at every start
    typer.echo(unit(config, watchdog, stop_timeout, user), nl=False)
