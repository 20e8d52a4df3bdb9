"""`danmask bench`: speed and size figures, each as a ratio against a reference timed in the same run.

Absolute milliseconds depend on the machine and on whatever else runs on it; a ratio against a reference measured
minutes apart on the same machine (MediaPipe landscape for model latency, decode-only for the pipeline) is what
can be compared between runs. Every run appends a dated section with the machine description to BENCHMARKS.md.
"""
from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError
from .latency import interleaved_latency_ms
from .models import loadable_models

REFERENCE_MODEL = "mediapipe-selfie-landscape"
BENCH_SIZE = (720, 1280)  # (h, w)
# Real footage preferred, in this order: a person in close-up (cinema, letterboxed), then the 720p cartoon.
PREFERRED_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def shared_data_dir() -> Path | None:
    """Research data lives outside the repo: $DANMASK_DATA, or ../shared/data from the working directory."""
    for candidate in (os.environ.get("DANMASK_DATA"), "../shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def machine_description() -> dict:
    """CPU model, cores, RAM, OS and the versions that decide inference speed."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": usable,
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


@dataclass
class Clip:
    path: Path
    source: str  # what the frames are, for the report
    frames: int
    duration_s: float


def _letterbox(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scale to fit (h, w) keeping the aspect, centred on black (how players show other aspects)."""
    h, w = shape
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = min(w, round(rgb.shape[1] * scale)), min(h, round(rgb.shape[0] * scale))
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
    return out


def prepare_clip(out: Path, frames: int, source: Path | None = None) -> Clip:
    """A 720p H.264 clip of `frames` frames: the real `source` letterboxed to 1280x720 at its own timing, or, with
    no source, a synthetic clip (danmask.synthetic) of the same size at 25 fps."""
    import av

    from ..video import iter_frames, probe

    if source is None:
        from ..synthetic import make_video

        make_video(out, frames=frames, shape=BENCH_SIZE, fps=25)
        return Clip(out, "synthetic (danmask.synthetic, 1280x720)", frames, frames / 25)
    info = probe(source)
    container = av.open(str(out), "w")
    try:
        stream = container.add_stream("libx264", rate=info.avg_fps or 25)
        stream.height, stream.width = BENCH_SIZE
        stream.pix_fmt = "yuv420p"
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.options = {"crf": "18", "preset": "veryfast"}
        count, first, last = 0, None, 0.0
        for frame in iter_frames(source):
            vf = av.VideoFrame.from_ndarray(_letterbox(frame.rgb, BENCH_SIZE), format="rgb24")
            vf.pts, vf.time_base = frame.pts, frame.time_base
            container.mux(stream.encode(vf))
            first = frame.time if first is None else first
            last, count = frame.time, count + 1
            if count >= frames:
                break
        container.mux(stream.encode())
    finally:
        container.close()
    if count < 2:
        raise DanmaskError(f"{source}: too few frames for a benchmark clip")
    step = (last - first) / (count - 1)
    return Clip(out, f"{source.name} ({info.width}x{info.height}) letterboxed to 1280x720", count,
                last - first + step)


def default_source() -> Path | None:
    data = shared_data_dir()
    if data is None:
        return None
    for name in PREFERRED_CLIPS:
        if (data / "clips" / name).is_file():
            return data / "clips" / name
    return None


@dataclass
class Timing:
    """Wall seconds and CPU seconds (every thread of this process) of one run, and what the run returned."""

    seconds: float
    cpu_seconds: float
    result: object = None


def _timed(fn) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, result)


def time_decode(path: Path) -> Timing:
    """Decode every frame to RGB, the way the pipeline's decoder thread does (danmask.video)."""
    from ..video import iter_frames

    def decode() -> None:
        for _ in iter_frames(path):
            pass

    return _timed(decode)


def time_pipeline(path: Path, model, output: Path) -> Timing:
    """segment_video streaming its track to `output` (decode thread, model, encode-and-write thread); the result
    is the track it made (a TrackReader of `output`)."""
    from ..pipeline import segment_video

    return _timed(lambda: segment_video(path, model, output=output, threads=1))


def time_scene_cut(path: Path) -> dict:
    """Mean ms per frame of thumbnail + SceneCutDetector.update on the clip's frames, the cuts found, and the median
    ms of the pan check (`aligned_ssim`) that a frame with a low plain SSIM adds, timed on every pair of frames."""
    from ..temporal import SceneCutDetector, aligned_ssim, thumbnail
    from ..video import iter_frames

    detector, spent, frames, cuts, pan = SceneCutDetector(), 0.0, 0, 0, []
    for frame in iter_frames(path):
        previous = detector.previous
        start = time.perf_counter()
        cuts += detector.update(thumb := thumbnail(frame.rgb))
        spent += time.perf_counter() - start
        frames += 1
        if previous is not None:
            start = time.perf_counter()
            aligned_ssim(previous, thumb)
            pan.append(time.perf_counter() - start)
    return {"ms_per_frame": 1000 * spent / max(1, frames), "cuts_found": cuts,
            "pan_check_ms": 1000 * float(np.median(pan)) if pan else 0.0}


def _median_run(fn, repeat: int) -> Timing:
    """Run fn() (which returns a Timing) `repeat` times; the run of median wall time."""
    runs = sorted((fn() for _ in range(repeat)), key=lambda timing: timing.seconds)
    return runs[(len(runs) - 1) // 2]


def mask_sizes(track, duration_s: float, work: Path) -> dict:
    """Bytes per minute of the .dmask file of one track (a TrackReader), of its .webmask (and of Bilibili's sample
    for scale)."""
    per_min = 60.0 / duration_s
    sizes = {"dmask_bytes_per_min": track.path.stat().st_size * per_min}
    try:
        from ..webmask import read_webmask, write_webmask
    except ImportError:
        return sizes  # the webmask writer is an optional stage of the core
    write_webmask(track, work / "bench.webmask")
    sizes["webmask_bytes_per_min"] = (work / "bench.webmask").stat().st_size * per_min
    data = shared_data_dir()
    sample = data / "webmask" / "bilibili-sample.webmask" if data else None
    if sample and sample.is_file():
        stamps = [t for t, _ in read_webmask(sample)]
        if len(stamps) > 1:
            span_s = (stamps[-1] - stamps[0]) / 1000 * len(stamps) / (len(stamps) - 1)
            sizes["bilibili_webmask_bytes_per_min"] = sample.stat().st_size * 60.0 / span_s
    return sizes


def run_bench(models: list[str] | None = None, pipeline_model: str | None = None, clip: Path | None = None,
              frames: int = 150, runs: int = 200, warmup: int = 20, repeat: int = 3,
              synthetic: bool = False, player: bool = True, people: bool = True) -> dict:
    """Measure everything; returns the JSON object of `danmask bench --json`."""
    from ..runtime import DEFAULT_MODEL, list_models, load_model

    models = list(models or loadable_models("bench"))
    if REFERENCE_MODEL not in models:
        models.append(REFERENCE_MODEL)
    if pipeline_model is None:
        pipeline_model = DEFAULT_MODEL if DEFAULT_MODEL in list_models() else REFERENCE_MODEL
    source = None if synthetic else (clip or default_source())
    result: dict = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
                    "machine": machine_description(), "reference_model": REFERENCE_MODEL,
                    "latency_runs": max(1, runs // 10) * 10}
    with tempfile.TemporaryDirectory(prefix="danmask-bench-") as tmp:
        work = Path(tmp)
        c = prepare_clip(work / "clip720.mp4", frames, source)
        result["clip"] = {"source": c.source, "frames": c.frames, "duration_s": round(c.duration_s, 3),
                          "size": [BENCH_SIZE[1], BENCH_SIZE[0]]}
        frame = next(_frames_of(c.path))
        latency: dict[str, dict] = {name: {} for name in models}
        for threads, suffix in ((1, ""), (2, "_2t")):
            loaded = {name: load_model(name, threads=threads) for name in models}
            for name, ms in interleaved_latency_ms(loaded, frame, runs, warmup).items():
                latency[name][f"median_ms{suffix}"] = ms
        ref = latency[REFERENCE_MODEL]
        for name, row in latency.items():
            row["ratio_vs_reference"] = row["median_ms"] / ref["median_ms"]
            row["ratio_vs_reference_2t"] = row["median_ms_2t"] / ref["median_ms_2t"]
        result["models"] = latency
        time_decode(c.path)  # warm the file cache and codec before timing
        decode = _median_run(lambda: time_decode(c.path), repeat)
        model = load_model(pipeline_model, threads=1)
        pipe = _median_run(lambda: time_pipeline(c.path, model, work / "bench.dmask"), repeat)
        track, pipe_s, decode_s = pipe.result, pipe.seconds, decode.seconds
        result["pipeline"] = {
            "model": pipeline_model, "frames": c.frames, "mask_size": list(track.mask_size),
            "seconds": pipe_s, "fps": c.frames / pipe_s, "decode_seconds": decode_s, "decode_fps": c.frames / decode_s,
            "ratio_vs_decode": pipe_s / decode_s, "fps_vs_decode": decode_s / pipe_s,
            "realtime_factor": c.duration_s / pipe_s, **cpu_figures(decode, pipe, c.frames),
        }
        cut = result["scene_cut"] = time_scene_cut(c.path)
        cut["share_of_pipeline_frame"] = cut["ms_per_frame"] / (1000 * pipe_s / c.frames)
        cut["share_of_decode_frame"] = cut["ms_per_frame"] / (1000 * decode_s / c.frames)
        sizes = mask_sizes(track, c.duration_s, work)
        sizes["video_bytes_per_min"] = c.path.stat().st_size * 60.0 / c.duration_s
        sizes["dmask_vs_video"] = sizes["dmask_bytes_per_min"] / sizes["video_bytes_per_min"]
        if "bilibili_webmask_bytes_per_min" in sizes:
            sizes["webmask_vs_bilibili"] = sizes["webmask_bytes_per_min"] / sizes["bilibili_webmask_bytes_per_min"]
        result["sizes"] = sizes
        if people:
            result["people"] = people_cost(c.path)
    if player:
        result["player"] = player_fps()
    return result


def cpu_figures(decode: Timing, pipe: Timing, frames: int) -> dict:
    """Why the pipeline runs at the speed it does: CPU ms per frame (all threads) of decode-only and of the
    pipeline, and the cores each kept busy (CPU / wall). fps vs decode-only = (decode CPU / pipeline CPU) x
    (pipeline cores busy / decode cores busy), exactly: better overlap raises only the second factor, which cannot
    pass (cores / decode's cores busy), so on a machine whose cores decoding alone nearly fills, the first decides."""
    decode_busy, pipe_busy = decode.cpu_seconds / decode.seconds, pipe.cpu_seconds / pipe.seconds
    return {"decode_cpu_ms_per_frame": 1000 * decode.cpu_seconds / frames,
            "cpu_ms_per_frame": 1000 * pipe.cpu_seconds / frames,
            "decode_cores_busy": decode_busy, "cores_busy": pipe_busy,
            "cpu_vs_decode": pipe.cpu_seconds / decode.cpu_seconds, "cores_busy_vs_decode": pipe_busy / decode_busy}


def people_frame(person: np.ndarray, count: int, shape: tuple[int, int] = BENCH_SIZE) -> np.ndarray:
    """An (h, w) frame showing `count` copies of one person's box in a grid (one row up to 4, then two)."""
    h, w = shape
    rows = 1 if count <= 4 else 2
    cols = -(-count // rows)
    frame = np.full((h, w, 3), 110, np.uint8)
    cell_w, cell_h = w // cols, h // rows
    scale = min(0.9 * cell_h / person.shape[0], 0.9 * cell_w / person.shape[1])
    tile = cv2.resize(person, (max(1, round(person.shape[1] * scale)), max(1, round(person.shape[0] * scale))))
    for k in range(count):
        r, c = divmod(k, cols)
        y = r * cell_h + (cell_h - tile.shape[0]) // 2
        x = c * cell_w + (cell_w - tile.shape[1]) // 2
        frame[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return frame


def people_cost(clip: Path, counts: tuple[int, ...] = (1, 2, 4, 8), frames: int = 40) -> dict:
    """Person-track time per frame with 1, 2, 4 and 8 people on screen (copies of the clip's largest person),
    everyone tracked, as on video (30 fps, the detector on its schedule); the median over `frames` frames."""
    from ..people.detector import PersonDetector
    from ..people.salience import SalienceRule
    from ..people.tracker import TrackerConfig
    from ..runtime import load_model, resolve

    detector = PersonDetector(resolve("person-track").extra["parts"]["detector"])
    person = None
    for rgb in _frames_of(clip):
        found = detector(rgb)
        if found:
            d = max(found, key=lambda d: d.area)
            person = rgb[int(d.y0):int(d.y1), int(d.x0):int(d.x1)]
            break
    if person is None:
        return {"skipped": "no person in the benchmark clip"}
    out = {}
    for count in counts:
        model = load_model("person-track", threads=1)
        model.tracker.config = TrackerConfig(max_people=max(counts), salience=SalienceRule(everyone=True))
        frame = people_frame(person, count)
        times, tracked = [], 0
        for i in range(frames):
            start = time.perf_counter()
            model.track(frame, i / 30.0, (180, 320))
            times.append(time.perf_counter() - start)
            tracked = len(model.people)
        out[str(count)] = {"ms_per_frame": 1000 * statistics.median(times[5:]), "tracked": tracked}
    base = out[str(counts[0])]["ms_per_frame"]
    for row in out.values():
        row["ratio_vs_one"] = row["ms_per_frame"] / base
    return out


def player_fps(comments: int = 300, seconds: float = 4.0) -> dict:
    """Web player frame rate in headless Chromium with `comments` on screen vs the same page with none."""
    from ..danmaku.browser import BrowserError, measure_player_fps

    try:
        empty = measure_player_fps(comments_on_screen=0, seconds=seconds)
        full = measure_player_fps(comments_on_screen=comments, seconds=seconds)
    except BrowserError as exc:
        return {"skipped": str(exc)}
    return {"comments": comments, "page_fps": full["page_fps"], "video_fps": full["video_fps"],
            "draw_ms_mean": full["draw_ms_mean"], "page_fps_no_comments": empty["page_fps"],
            "ratio_vs_no_comments": full["page_fps"] / empty["page_fps"], "size": full["size"],
            "browser": full["browser"]}


def _people_lines(r: dict) -> list[str]:
    pc = r.get("people")
    if not pc:
        return []
    if "skipped" in pc:
        return [f"person-track cost per number of people: skipped ({pc['skipped']})"]
    return ["person-track, 1 thread, masks 320x180: " + ", ".join(
        f"{n} people {row['ms_per_frame']:.1f} ms (x{row['ratio_vs_one']:.2f}, {row['tracked']} tracked)"
        for n, row in pc.items())]


def _people_table(r: dict) -> str:
    pc = r.get("people")
    if not pc or "skipped" in pc:
        return "\n".join(_people_lines(r))
    rows = "\n".join(f"| {n} | {row['tracked']} | {row['ms_per_frame']:.1f} | {row['ratio_vs_one']:.2f} |"
                     for n, row in pc.items())
    return ("Person-track cost per number of people (copies of the clip's largest person on one 720p frame, "
            "everyone tracked, 1 thread, median ms per frame):\n\n| people | tracked | ms/frame | x one person |\n"
            f"|---:|---:|---:|---:|\n{rows}\n")


def _player_line(r: dict) -> str:
    pl = r.get("player")
    if not pl:
        return "web player: not measured (--no-player)"
    if "skipped" in pl:
        return f"web player: skipped ({pl['skipped']})"
    return (f"web player ({pl['size']}, {pl['browser']}): {pl['page_fps']:.1f} page fps with {pl['comments']} comments "
            f"on screen vs {pl['page_fps_no_comments']:.1f} with none (x{pl['ratio_vs_no_comments']:.2f}); "
            f"video {pl['video_fps']:.1f} fps; danmaku draw {pl['draw_ms_mean']:.2f} ms")


def _frames_of(path: Path):
    from ..video import iter_frames

    for frame in iter_frames(path):
        yield frame.rgb


def _kb(v: float | None) -> str:
    return "-" if v is None else f"{v / 1024:.1f} KiB"


def format_table(r: dict) -> str:
    """The human-readable summary printed by `danmask bench`."""
    m, p, s, z = r["machine"], r["pipeline"], r["scene_cut"], r["sizes"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {m['os']}, python {m['python']}, "
             f"onnxruntime {m['onnxruntime']} (load avg {m['load_avg_1m']})",
             f"clip: {r['clip']['source']}, {r['clip']['frames']} frames, {r['clip']['duration_s']:.2f} s", "",
             f"{'model':<30} {'ms 1t':>8} {'x ref':>7} {'ms 2t':>8} {'x ref':>7}"]
    for name, row in r["models"].items():
        lines.append(f"{name:<30} {row['median_ms']:>8.2f} {row['ratio_vs_reference']:>7.2f} "
                     f"{row['median_ms_2t']:>8.2f} {row['ratio_vs_reference_2t']:>7.2f}")
    lines += ["", f"pipeline ({p['model']}, masks {p['mask_size'][1]}x{p['mask_size'][0]}): {p['fps']:.1f} fps, "
              f"decode only {p['decode_fps']:.1f} fps, pipeline/decode time x{p['ratio_vs_decode']:.2f} "
              f"(fps x{p['fps_vs_decode']:.2f}), "
              f"{p['realtime_factor']:.2f}x real time",
              f"CPU per frame: pipeline {p['cpu_ms_per_frame']:.2f} ms ({p['cores_busy']:.2f} cores busy), decode only "
              f"{p['decode_cpu_ms_per_frame']:.2f} ms ({p['decode_cores_busy']:.2f} cores busy): CPU x{p['cpu_vs_decode']:.2f}, "
              f"cores busy x{p['cores_busy_vs_decode']:.2f} of decode-only",
              f"scene-cut detector: {s['ms_per_frame']:.3f} ms/frame = {s['share_of_pipeline_frame']:.1%} of a "
              f"pipeline frame ({s['cuts_found']} cuts found), +{s['pan_check_ms']:.3f} ms on a frame whose plain "
              f"SSIM is low (the pan check)",
              f"per minute of video: .dmask {_kb(z['dmask_bytes_per_min'])} "
              f"({z['dmask_vs_video']:.1%} of the H.264 clip, {_kb(z['video_bytes_per_min'])}), "
              f".webmask {_kb(z.get('webmask_bytes_per_min'))}, Bilibili sample .webmask "
              f"{_kb(z.get('bilibili_webmask_bytes_per_min'))}", *_people_lines(r), _player_line(r)]
    return "\n".join(lines)


def markdown_section(r: dict) -> str:
    """The dated section appended to BENCHMARKS.md."""
    m, p, s, z = r["machine"], r["pipeline"], r["scene_cut"], r["sizes"]
    rows = "\n".join(f"| {name} | {row['median_ms']:.2f} | {row['ratio_vs_reference']:.2f} | "
                     f"{row['median_ms_2t']:.2f} | {row['ratio_vs_reference_2t']:.2f} |"
                     for name, row in r["models"].items())
    web = z.get("webmask_bytes_per_min")
    bili = z.get("bilibili_webmask_bytes_per_min")
    return f"""
## {r['date']}

Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; Python {m['python']}, onnxruntime
{m['onnxruntime']}, OpenCV {m['opencv']}; 1-minute load average at start {m['load_avg_1m']}.
Clip: {r['clip']['source']}, {r['clip']['frames']} frames ({r['clip']['duration_s']:.2f} s).

Model latency (`predict` on one 720p frame, median of {r['latency_runs']} timed runs after warm-up, models alternating in
10 rounds; ratio vs {r['reference_model']}):

| model | ms, 1 thread | x ref | ms, 2 threads | x ref |
|---|---:|---:|---:|---:|
{rows}

| measure | value | reference | ratio |
|---|---:|---:|---:|
| whole pipeline ({p['model']}, `segment_video` to a .dmask), fps | {p['fps']:.1f} | decode only {p['decode_fps']:.1f} fps | time x{p['ratio_vs_decode']:.2f}, fps x{p['fps_vs_decode']:.2f} |
| CPU per frame (all threads), ms | {p['cpu_ms_per_frame']:.2f}, {p['cores_busy']:.2f} cores busy | decode only {p['decode_cpu_ms_per_frame']:.2f}, {p['decode_cores_busy']:.2f} cores busy | CPU x{p['cpu_vs_decode']:.2f}, cores busy x{p['cores_busy_vs_decode']:.2f} |
| scene-cut detector, ms/frame | {s['ms_per_frame']:.3f} | pipeline {1000 * p['seconds'] / p['frames']:.2f} ms/frame | {s['share_of_pipeline_frame']:.1%} |
| scene-cut pan check, ms on a low-SSIM frame | {s['pan_check_ms']:.3f} | pipeline {1000 * p['seconds'] / p['frames']:.2f} ms/frame | {s['pan_check_ms'] / (1000 * p['seconds'] / p['frames']):.1%} |
| .dmask per minute | {_kb(z['dmask_bytes_per_min'])} | H.264 clip {_kb(z['video_bytes_per_min'])} | {z['dmask_vs_video']:.1%} |
| .webmask per minute | {_kb(web)} | Bilibili sample {_kb(bili)} | {'-' if 'webmask_vs_bilibili' not in z else f"{z['webmask_vs_bilibili']:.2f}"} |

{_people_table(r)}
{_player_line(r)}
"""


def append_section(path: Path, section: str) -> None:
    """Append to BENCHMARKS.md, creating it with a title when missing."""
    try:
        if not path.exists():
            path.write_text("# Benchmarks\n\nAppended by `danmask bench`; compare ratios, not milliseconds, "
                            "across machines.\n", encoding="utf-8")
        with path.open("a", encoding="utf-8") as fh:
            fh.write(section)
    except OSError as exc:
        raise DanmaskError(f"{path}: cannot append benchmark ({exc.strerror or exc})") from exc
