"""What ``ctrt run`` shows: the progress of a run, its report and exit status, and a checked plan."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .app import console, error, errors, size, titled, warning


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


def report_run(run: Any) -> None:
    """The run's report, then its exit status: 0 at the end of every source, 1 for a lost or failed stream,
    128 + signal when stopped by Ctrl-C/SIGTERM/SIGHUP (outputs complete in every case)."""
    report = run.report
    if len(report.streams) == 1 and not any(s.save_dir for s in run.plan.streams):
        stream = report.streams[0]
        console.print(f"{stream.frames} frames, {stream.tracks} track ids, {stream.fps:.2f} FPS on {run.model.name}"
                      + (f", {stream.skipped} unreadable frames skipped" if stream.skipped else "")
                      + (f", {stream.reconnects} reconnects ({stream.down_s:.0f} s away)" if stream.reconnects
                         else ""), soft_wrap=True)
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
    _counts_table(run)
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
    for column in ("stream", "state", "frames", "dropped", "skipped", "reconnects", "down s", "track ids", "FPS",
                   "latency p50 ms"):
        table.add_column(column, justify="left" if column in ("stream", "state") else "right")
    for stream in report.streams:
        latency = stream.latency_percentiles()
        table.add_row(escape(stream.name), stream.state, str(stream.frames), str(stream.dropped), str(stream.skipped),
                      str(stream.reconnects), f"{stream.down_s:.0f}", str(stream.tracks), f"{stream.fps:.2f}",
                      f"{latency['p50']:.0f}" if latency else "-")
    console.print(table)
    written = [s.name for s in report.streams if s.frames]
    if run.outputs and written:
        folder = run.outputs[0].parent
        console.print(f"wrote <name>.mp4, .txt and .jsonl for {', '.join(map(escape, written))} to "
                      f"{escape(str(folder))}", soft_wrap=True)


def _counts_table(run: Any) -> None:
    """Each counting line's crossings and zone's enters, leaves and occupancy at the end, by class."""
    counts = run.counts
    if not counts:
        return
    table = titled("counts")
    for column in ("camera", "line / zone", "class", "in", "out", "enter", "leave", "inside now"):
        table.add_column(column, justify="left" if column in ("camera", "line / zone", "class") else "right")
    for camera, shapes in counts.items():
        for name, kinds in shapes.items():
            classes = sorted({c for per_class in kinds.values() for c in per_class}) or ["-"]
            for cls in classes:
                table.add_row(escape(camera), escape(name), escape(cls), *(
                    str(kinds[k].get(cls, 0)) if k in kinds else "" for k in ("in", "out", "enter", "leave",
                                                                             "occupancy")))
    console.print(table)


def render_plan(site: Any, plan: Any) -> None:
    """``ctrt run --config --check``: the plan every check passed, one row a stream."""
    from ..runtime.tracker import TrackerConfig

    cameras = f"{len(plan.streams)} camera{'' if len(plan.streams) == 1 else 's'}"
    console.print(f"{escape(str(site.path))}: {cameras}, model {escape(str(plan.model))}", soft_wrap=True)
    defaults = asdict(TrackerConfig())
    table = titled("cameras")
    for column in ("camera", "source", "drop", "tracker", "counts", "outputs"):
        table.add_column(column)
    for stream in plan.streams:
        tracker = stream.tracker
        changed = {k: v for k, v in asdict(tracker).items() if defaults[k] != v} \
            if isinstance(tracker, TrackerConfig) else {"own": type(tracker).__name__}
        used = [o for o, on in (("files", stream.save_dir), ("mqtt", plan.publish and stream.publish)) if on]
        table.add_row(escape(stream.name), escape(str(stream.source)), stream.drop or "auto",
                      ", ".join(f"{k}={v}" for k, v in changed.items()) or "CenterTrack's",
                      escape(", ".join(f"{s.kind} {s.name}" for s in stream.shapes)) or "-", ", ".join(used) or "-")
    console.print(table)
    folders = sorted({str(s.save_dir) for s in plan.streams if s.save_dir})
    outputs: list[str | None] = [f"save_dir {', '.join(folders)}" if folders else None,
               f"publish {plan.publish.url}" if plan.publish else None,
               f"http {plan.http.bind}" if plan.http else None]
    console.print("outputs: " + (", ".join(o for o in outputs if o) or "none"), soft_wrap=True)
    console.print("site file ok")
