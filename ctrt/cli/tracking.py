"""``ctrt run``, ``ctrt demo`` and ``ctrt service-unit``: flags into a ``RunPlan`` (the library's), then the run's
progress and report rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ..errors import CtrtError
from ..options import TRACKER_OPTIONS, default
from .app import command, console, next_steps, notes, opt
from .run_view import follow, render_plan, report_run

# The options of ``ctrt run`` that go to ``ctrt.load`` rather than to the plan's streams.
LOAD_FLAGS = ("device", "threads", "input_size", "transport", "allow_partial", "shm", "reconnects")


def given_in(ctx: typer.Context) -> Any:
    """Whether the user gave an option (not its default): only those override a site file."""
    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    return given


@command(example="ctrt run engines/m_fp16.engine -s rtsp://10.0.0.5/stream1 -s 0 --save-dir runs/site")
def run(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Argument(help="exported .onnx (ONNX Runtime), .engine (TensorRT), a .pth checkpoint (PyTorch), or a model on Triton: triton://HOST:PORT/MODEL (gRPC), http://HOST:PORT/MODEL (default with --config: the site's)")] = None,
    source: Annotated[Optional[list[str]], typer.Option("-s", "--source", rich_help_panel="Sources", help="camera index, video, folder, glob, URL or GStreamer pipeline; repeat for several streams (default: camera 0)")] = None,
    sources: Annotated[Optional[Path], typer.Option(rich_help_panel="Sources", help="a text file of sources, one a line")] = None,
    save_dir: Annotated[Optional[Path], opt("save_dir")] = None,
    drop: Annotated[Optional[str], opt("drop")] = None,
    overlap: Annotated[bool, opt("overlap")] = default("overlap"),
    device: Annotated[str, opt("device")] = default("device"),
    threads: Annotated[int, opt("threads")] = default("threads"),
    input_size: Annotated[Optional[str], opt("input_size")] = None,
    topk: Annotated[int, opt("topk")] = default("topk"),
    tracker: Annotated[str, opt("tracker")] = default("tracker"),
    track_thresh: Annotated[float, opt("track_thresh")] = default("track_thresh"),
    pre_thresh: Annotated[Optional[float], opt("pre_thresh")] = None,
    new_thresh: Annotated[Optional[float], opt("new_thresh")] = None,
    max_age: Annotated[Optional[int], opt("max_age")] = None,
    hungarian: Annotated[Optional[bool], opt("hungarian")] = None,
    coast: Annotated[Optional[bool], opt("coast")] = None,
    low_thresh: Annotated[Optional[float], opt("low_thresh")] = None,
    min_hits: Annotated[Optional[int], opt("min_hits")] = None,
    gate: Annotated[Optional[float], opt("gate")] = None,
    lines: Annotated[Optional[list[str]], opt("lines")] = None,
    zones: Annotated[Optional[list[str]], opt("zones")] = None,
    save_video: Annotated[Optional[Path], opt("save_video")] = None,
    save_mot: Annotated[Optional[Path], opt("save_mot")] = None,
    save_json: Annotated[Optional[Path], opt("save_json")] = None,
    segment: Annotated[Optional[float], opt("segment")] = None,
    recordings: Annotated[str, opt("recordings")] = default("recordings"),
    overwrite: Annotated[bool, opt("overwrite")] = default("overwrite"),
    keep_days: Annotated[Optional[float], opt("keep_days")] = None,
    max_gb: Annotated[Optional[float], opt("max_gb")] = None,
    show: Annotated[bool, opt("show")] = default("show"),
    max_frames: Annotated[Optional[int], opt("max_frames")] = None,
    reconnects: Annotated[str, opt("reconnects")] = default("reconnects"),
    allow_partial: Annotated[bool, opt("allow_partial")] = default("allow_partial"),
    shm: Annotated[bool, opt("shm")] = default("shm"),
    transport: Annotated[Optional[str], opt("transport")] = None,
    config: Annotated[Optional[Path], typer.Option(rich_help_panel="Service", help="a site file (TOML): [model], [tracker], [[camera]] and [outputs]; options given here override it")] = None,
    check: Annotated[bool, typer.Option(rich_help_panel="Service", help="with --config: check the site file and the run it plans, and exit, opening no model or camera")] = False,
    publish: Annotated[Optional[str], opt("publish")] = None,
    publish_ca: Annotated[Optional[Path], opt("publish_ca")] = None,
    publish_rate: Annotated[float, opt("publish_rate")] = default("publish_rate"),
    publish_buffer: Annotated[int, opt("publish_buffer")] = default("publish_buffer"),
    publish_frames: Annotated[bool, opt("publish_frames")] = default("publish_frames"),
    http: Annotated[Optional[str], opt("http")] = None,
    http_token_file: Annotated[Optional[Path], opt("http_token_file")] = None,
    stale_after: Annotated[float, opt("stale_after")] = default("stale_after"),
    http_fps: Annotated[float, opt("http_fps")] = default("http_fps"),
) -> None:
    """Track objects on cameras, videos, streams or image folders: one stream, or several batched on one model."""
    values = {name: value for name, value in locals().items() if name not in ("ctx", "model", "source", "sources",
                                                                             "config", "check")}
    from ..api import read_site, run_plan
    from ..plan import plan_run
    from ..runtime.stream_setup import read_sources_file
    from ..runtime.tracker import tracker_preset

    given = given_in(ctx)
    if check and config is None:
        raise CtrtError("--check checks a site file: give it with --config")
    specs = [*(source or []), *(read_sources_file(sources) if sources else [])]
    protect = [sources] if sources else []
    if config is not None:
        overrides = {name: value for name, value in values.items() if given(name)}
        site = read_site(config)
        plan = site.plan(**overrides, **({"source": specs} if specs else {}), **({"model": model} if model else {}),
                         protect=protect)
        if check:
            plan.check_outputs()
            render_plan(site, plan)
            return
    else:
        if model is None:
            raise CtrtError("give a MODEL (or a site file with --config)")
        own = {name: values.pop(name) for name in TRACKER_OPTIONS}
        chosen = tracker_preset(values.pop("tracker"), **{k: v for k, v in own.items() if v is not None})
        loading = {name: values[name] if name == "reconnects" else values.pop(name) for name in LOAD_FLAGS}
        plan = plan_run(specs or ["0"], tracker=chosen, protect=protect, model=model, load=loading, **values)
    run = run_plan(plan)
    notes(run.model.notes)  # after the run's checks: a refused run says one line
    if run.http_url:
        console.print(f"serving {run.http_url} (metrics, health, live view)", soft_wrap=True)
    follow(run)
    report_run(run)


@command(example="ctrt demo --streams 4")
def demo(
    checkpoint: Annotated[Optional[Path], typer.Option(rich_help_panel="Model and device", help="use your checkpoint instead of the built-in demo model")] = None,
    input_size: Annotated[str, typer.Option(rich_help_panel="Model and device", help="HxW of the model (the demo model is fitted at 256x256)")] = "256x256",
    frames: Annotated[int, typer.Option(min=2, max=100000, rich_help_panel="Sources", help="length of the generated video")] = 30,
    streams: Annotated[int, typer.Option(min=1, max=64, rich_help_panel="Sources", help="generated videos tracked at once, batched on one model")] = 1,
    output_dir: Annotated[Path, typer.Option(rich_help_panel="Outputs", help="where the videos, MOT txt and JSON go")] = Path("runs/demo"),
    device: Annotated[str, typer.Option(rich_help_panel="Model and device", help="auto, cpu or cuda")] = "auto",
) -> None:
    """The whole chain on a fresh machine: generated video -> exported model -> tracker -> saved outputs."""
    from ..api import load
    from ..demo import DEMO_RUN_OPTIONS, demo_model, demo_tracker, make_demo_video
    from ..outputs import check_outputs
    from ..runtime.stream_setup import save_paths
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
    report_run(run)
    next_steps(f"ctrt run {onnx_path} --source 0 --save-video out.mp4", f"ctrt inspect {onnx_path}")


@command(example="ctrt service-unit --config /etc/ctrt/site.toml > ctrt-site.service")
def service_unit(
    config: Annotated[Path, typer.Option(rich_help_panel="Service", help="the site file the service runs (ctrt run --config)")],
    watchdog: Annotated[int, typer.Option(min=5, max=3600, rich_help_panel="Service", help="WatchdogSec: seconds without a tracked frame before systemd restarts the run")] = 30,
    stop_timeout: Annotated[int, typer.Option(min=10, max=3600, rich_help_panel="Service", help="TimeoutStopSec: time to finish the outputs after SIGTERM")] = 60,
    user: Annotated[str, typer.Option(rich_help_panel="Service", help="the account the service runs as (create it: docs, \"Running as a service\")")] = "ctrt",
) -> None:
    """Print a hardened systemd unit running the site as a service: Type=notify, watchdog, restart on failure, the
    file system read-only but for the site's output folders."""
    from ..api import read_site
    from ..site.systemd import service_unit as unit

    plan = read_site(config).plan()  # a unit for a site that does not check would fail at every start
    folders = sorted({s.save_dir for s in plan.streams if s.save_dir is not None})
    typer.echo(unit(config, watchdog, stop_timeout, user, folders), nl=False)
