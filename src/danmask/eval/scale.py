"""`danmask bench --scale`: the catalog figures, each against a peer measured in the same run.

- memory: peak RSS of `danmask segment` (a process of its own, read with wait4) on a 10-minute 720p video vs a
  1-minute one, both synthetic (a danmask.synthetic clip looped by remuxing, no re-encode: nothing committed);
- batch: videos per hour of `danmask batch` with 1 and 2 workers vs a plain loop of `danmask segment`, same inputs;
- cost: CPU seconds per 720p frame of the whole pipeline for the default and the fast model, and the cluster
  that 10,000 hours of video a day would need at that cost (assumptions stated next to the figure);
- serve: the service's load test (`danmask.serve.loadtest`): requests/s, p95 latency, peak memory, nothing lost.

Absolute figures move with the machine's other load; ratios taken minutes apart in one run are what compare.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..errors import DanmaskError
from .bench import BENCH_SIZE, _timed, default_source, machine_description, prepare_clip

FPS = 25
HOURS_PER_DAY = 10_000  # of new video, the catalog figure the issue asks about
UTILISATION = 0.7  # of a cluster's cores kept busy on average (queues, stragglers, restarts)
NODE_CORES = 16


def loop_video(src: Path, out: Path, times: int) -> Path:
    """`src` played `times` times in a row, as one video: its packets copied with their pts shifted (no re-encode,
    so a 10-minute 720p file takes seconds to make)."""
    import av

    def packets() -> Iterator[av.Packet]:
        with av.open(str(src)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.dts is not None:
                    yield packet

    span = max(p.pts + max(p.duration or 0, 1) for p in packets())
    with av.open(str(src)) as template, av.open(str(out), "w") as container:
        stream = container.add_stream_from_template(template.streams.video[0])
        for k in range(times):
            for packet in packets():
                packet.pts += k * span
                packet.dts += k * span
                packet.stream = stream
                container.mux(packet)
    return out


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def run_process(cmd: list[str]) -> dict:
    """Run a danmask command in a process of its own: its stdout, exit code, peak RSS (VmHWM, read with wait4),
    CPU and wall seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "danmask.cli", *cmd], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return {"stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace"),
                "code": proc.returncode, "peak_rss_mib": usage.ru_maxrss / 1024,
                "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall}


def segment_process(video: Path, output: Path, model: str) -> dict:
    """`danmask segment VIDEO -o OUTPUT --model MODEL` in its own process: frames, peak RSS, CPU and wall seconds."""
    run = run_process(["segment", str(video), "-o", str(output), "--model", model, "-q", "--json"])
    if run["code"]:
        raise DanmaskError(f"danmask segment {video.name} failed: {_last_line(run['stderr'])}")
    return {"frames": json.loads(run["stdout"])["frames"],
            **{k: run[k] for k in ("peak_rss_mib", "cpu_s", "wall_s")}}


def memory_figures(work: Path, long_minutes: int, model: str) -> dict:
    """Peak RSS of segmenting a 1-minute and a `long_minutes`-minute 720p video (one synthetic 10 s clip looped)."""
    from ..synthetic import make_video

    base = make_video(work / "base720.mp4", frames=10 * FPS, shape=BENCH_SIZE, fps=FPS, cut_at=5 * FPS).path
    short = segment_process(loop_video(base, work / "1min.mp4", 6), work / "1min.dmask", model)
    long = segment_process(loop_video(base, work / "long.mp4", 6 * long_minutes), work / "long.dmask", model)
    for name in ("1min.mp4", "long.mp4"):
        (work / name).unlink()
    return {"model": model, "short": short, "long": long, "long_minutes": long_minutes,
            "peak_ratio": long["peak_rss_mib"] / short["peak_rss_mib"]}


def batch_figures(work: Path, model: str, videos: int = 6, frames: int = 10 * FPS) -> dict:
    """Videos per hour: a loop of `danmask segment`, then `danmask batch` with 1 and with 2 workers (each starting
    its own local Ray), on the same synthetic 640x360 clips. Batch also writes a .webmask per video; the loop
    does not."""
    from ..synthetic import make_video

    folder = work / "catalog"
    folder.mkdir()
    clips = [make_video(folder / f"clip{i}.mp4", frames=frames, shape=(360, 640), fps=FPS, seed=i,
                        cut_at=frames // 2).path for i in range(videos)]
    started = time.perf_counter()
    for clip in clips:
        segment_process(clip, work / f"{clip.stem}.dmask", model)
    rows = {"segment_loop": {"seconds": time.perf_counter() - started}}
    for workers in (1, 2):
        run = run_process(["batch", str(folder), "-o", str(work / f"batch{workers}"), "--model", model,
                           "--workers", str(workers), "-q"])
        if run["code"]:
            raise DanmaskError(f"danmask batch failed: {_last_line(run['stderr'])}")
        rows[f"batch_{workers}_workers"] = {"seconds": run["wall_s"]}
    for row in rows.values():
        row["videos_per_hour"] = videos * 3600 / row["seconds"]
        row["vs_loop"] = row["videos_per_hour"] / (videos * 3600 / rows["segment_loop"]["seconds"])
    return {"model": model, "videos": videos, "frames_each": frames, "size": "640x360", "runs": rows}


def cost_figures(work: Path, models: tuple[str, ...]) -> dict:
    """CPU ms per 720p frame of the whole pipeline (decode, model, temporal stage, track writing; 1 inference
    thread; model loading not counted) on the bench clip, and the cluster 10,000 hours of video a day needs."""
    from ..pipeline import segment_video
    from ..runtime import load_model

    clip = prepare_clip(work / "cost720.mp4", 150, default_source())
    out: dict = {"clip": clip.source, "frames": clip.frames, "models": {}}
    frames_per_day = HOURS_PER_DAY * 3600 * FPS
    for name in models:
        model = load_model(name, threads=1)
        timing = _timed(lambda: segment_video(clip.path, model, output=work / "cost.dmask", threads=1))
        cpu_s = timing.cpu_seconds / clip.frames
        cores = frames_per_day * cpu_s / 86_400 / UTILISATION
        out["models"][name] = {"cpu_ms_per_frame": 1000 * cpu_s, "wall_ms_per_frame": 1000 * timing.seconds / clip.frames,
                               "cores": cores, "nodes": -(-cores // NODE_CORES)}
    return out


def serve_figures(work: Path) -> dict:
    """The service's load test on loopback: one `danmask serve` (SQLite, 1 job worker), 8 clients for 8 s."""
    from ..serve.loadtest import Server, load_test
    from ..synthetic import make_video

    clip = make_video(work / "serve.mp4", frames=45, shape=(90, 160)).path
    server = Server(work / "data", "--comment-rate", "100000/1", "--workers", "1")
    try:
        result = load_test(server.start(), clip)
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise DanmaskError(f"serve load test: {_last_line(str(exc))}") from exc
    finally:
        server.stop()
    result["errors"] = result["errors"][:5]
    return result


def run_scale(long_minutes: int = 10) -> dict:
    """Every figure; the JSON object of `danmask bench --scale --json`."""
    from ..runtime import DEFAULT_MODEL

    result: dict = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                    "machine": machine_description()}
    with tempfile.TemporaryDirectory(prefix="danmask-scale-") as tmp:
        work = Path(tmp)
        for key, measure in (("memory", lambda d: memory_figures(d, long_minutes, "fast")),
                             ("batch", lambda d: batch_figures(d, "fast")),
                             ("cost", lambda d: cost_figures(d, (DEFAULT_MODEL, "fast"))),
                             ("serve", serve_figures)):
            folder = work / key
            folder.mkdir()
            result[key] = measure(folder)
    return result


def _lines(r: dict) -> list[str]:
    """One line per figure, shared by the terminal table and the BENCHMARKS.md section."""
    mem, batch, cost, srv = r["memory"], r["batch"], r["cost"], r["serve"]
    s, lg = mem["short"], mem["long"]
    runs = batch["runs"]
    lines = [f"peak memory, `danmask segment --model {mem['model']}` on 720p at {FPS} fps: {mem['long_minutes']} min "
             f"({lg['frames']} frames) {lg['peak_rss_mib']:.0f} MiB vs 1 min ({s['frames']} frames) "
             f"{s['peak_rss_mib']:.0f} MiB: x{mem['peak_ratio']:.2f} (bar: <= 1.2); CPU per frame "
             f"{1000 * lg['cpu_s'] / lg['frames']:.2f} vs {1000 * s['cpu_s'] / s['frames']:.2f} ms",
             f"batch, {batch['videos']} videos of {batch['frames_each']} frames {batch['size']}, --model "
             f"{batch['model']}: " + ", ".join(
                 f"{name.replace('_', ' ')} {row['videos_per_hour']:.0f} videos/h ({row['seconds']:.1f} s, "
                 f"x{row['vs_loop']:.2f} of the loop)" for name, row in runs.items())]
    for name, row in cost["models"].items():
        lines.append(f"cost, {name}: {row['cpu_ms_per_frame']:.1f} ms CPU per 720p frame (wall "
                     f"{row['wall_ms_per_frame']:.1f} ms) -> {HOURS_PER_DAY:,} h/day at {FPS} fps needs "
                     f"{row['cores']:.0f} cores = {row['nodes']:.0f} nodes of {NODE_CORES} cores")
    lines.append(f"serve load test, {srv['clients']} clients for {srv['seconds']:.1f} s: {srv['requests_per_s']:.0f} "
                 f"requests/s, p50 {srv['p50_ms']:.0f} ms, p95 {srv['p95_ms']:.0f} ms, peak memory "
                 f"{srv['peak_rss_mib']:.0f} MiB (server + job workers), {len(srv['errors'])} errors, "
                 f"{srv['comments_lost']} of {srv['comments']} comments lost, {srv['uploads_done']} of "
                 f"{srv['uploads']} uploads done")
    return lines


def format_scale(r: dict) -> str:
    m = r["machine"]
    return "\n".join([f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB (load avg {m['load_avg_1m']})",
                      *_lines(r)])


def markdown_scale(r: dict) -> str:
    """The dated section appended to BENCHMARKS.md."""
    m = r["machine"]
    items = "\n".join(f"- {line}" for line in _lines(r))
    return f"""
## {r['date']}: catalog scale (`danmask bench --scale`)

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, onnxruntime
{m['onnxruntime']}; 1-minute load average at start {m['load_avg_1m']}. Cost clip: {r['cost']['clip']}.

{items}

Cluster estimate: 10,000 hours a day of 720p video at {FPS} fps is {HOURS_PER_DAY * 3600 * FPS:,} frames a day;
cores = frames x CPU seconds per frame / 86,400 s / {UTILISATION} (average utilisation), on CPUs like this one,
one inference thread per video, no GPU; decoding is part of the cost and grows with resolution (1080p decodes
about 2x slower than 720p).
"""
