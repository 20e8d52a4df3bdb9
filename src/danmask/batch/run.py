"""The Ray driver of `danmask batch`: plan every video, segment its parts on the workers, merge, write the manifest.

Safe to kill and rerun with the same command: every output (a part's track, the joined .dmask, the .webmask, the
manifest) appears under its final name only when complete (`outputs.atomic_file`; tracks are written in the work
folder and renamed), a video whose .dmask and .webmask exist is skipped, and a part whose track exists in the work
folder is not redone. Ray retries a task whose worker died (up to 3 times); an error in one video (not a video,
damaged, cannot be written) fails that video's manifest row with one line and the others go on.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DanmaskError, VideoError
from ..outputs import check_folder
from ..runtime import DEFAULT_MODEL
from .inputs import expand_inputs, output_names
from .manifest import read_manifest, row, write_manifest
from .merge import merge_parts
from .plan import Part, plan_parts
from .reaper import start_reaper, stop_reaper, watch_children

WORK_DIR = ".danmask-batch"  # inside the output folder: the parts' tracks while a video is under way
MANIFEST = "manifest.jsonl"
TASK_RETRIES = 3
_OBJECT_STORE_BYTES = 128 << 20  # results are a few numbers; the masks go to files, never through Ray


# ---------------------------------------------------------------- what runs on the workers


def plan_task(video: str, part_s: float, overlap_s: float) -> tuple[list[Part], int | None]:
    """The video's parts and its expected frame count (for the progress bar)."""
    from ..video import probe

    return plan_parts(video, part_s, overlap_s), probe(video).frames


def part_task(video: str, part: Part, path: str, model: str, options: dict) -> tuple[int, float]:
    """Segment one part (its warm-up included) into `path`; returns (frames, seconds)."""
    from ..pipeline import segment_video

    started = time.perf_counter()
    start = part.warm if part.warm is not None else part.start
    try:
        track = segment_video(video, model, output=path, start=start, end=part.end, **options)
    except VideoError as exc:
        Path(path).unlink(missing_ok=True)  # frames before damage are no finished part
        raise VideoError(str(exc)) from None  # without the partial track, which cannot travel between processes
    frames = len(track)
    track.close()
    return frames, time.perf_counter() - started


def merge_task(parts: list[Part], paths: list[str], output: str, webmask: str) -> tuple[int, float, float]:
    """Join the parts into the video's .dmask and .webmask; returns (frames, seconds, video seconds).

    The joined track (and its writer's journal) is built in the parts' work folder and renamed into place after
    the .webmask, so a driver killed mid-merge leaves no partial file of any name in the output folder.
    """
    from ..outputs import error
    from ..trackreader import TrackReader

    started = time.perf_counter()
    joined = Path(paths[0]).with_name("joined.dmask")
    frames = merge_parts(parts, [Path(p) for p in paths], joined, Path(webmask))
    with TrackReader(joined, people=False) as track:
        duration = track.duration_s
    try:
        os.replace(joined, output)
    except OSError as exc:
        raise error(Path(output), exc) from exc
    return frames, time.perf_counter() - started, duration


# ---------------------------------------------------------------- the driver


@dataclass
class _Video:
    path: Path
    name: str
    dmask: Path
    webmask: Path
    parts: list[Part] = field(default_factory=list)
    work: Path | None = None
    waiting: set[int] = field(default_factory=set)
    seconds: float = 0.0
    failed: bool = False


def run_batch(inputs: list[str | Path], output: str | Path, *, model: str = DEFAULT_MODEL,
              address: str | None = None, workers: int | None = None, part_s: float = 60.0,
              overlap_s: float = 2.0, threads: int = 1, mask_size: tuple[int, int] | None = None,
              progress: bool = False) -> list[dict]:
    """Segment every video of `inputs` on Ray into `output`/NAME.dmask and NAME.webmask; returns the manifest rows.

    Args:
        inputs: video files, folders of videos, or .txt/.lst files with one video path per line.
        output: folder for the outputs and `manifest.jsonl` (created if missing).
        model: segmentation model (registry name or .onnx path every worker can read).
        address: Ray cluster ("auto", "ray://HOST:PORT"); None starts a local Ray with `workers` CPUs.
        workers: CPUs of the local Ray (default: all); ignored with `address`.
        part_s: a video longer than 1.5 x part_s is cut into parts of about that many seconds.
        overlap_s: warm-up before each cut, segmented and dropped, so the temporal state is as in one run.
        threads, mask_size: per task, as in `segment_video`.
        progress: tqdm bars (videos, frames) on stderr.

    Raises:
        DanmaskError: Ray missing, no videos, an output folder that cannot be written.
    """
    ray = _import_ray()
    out = check_folder(output)
    videos = expand_inputs(inputs)
    names = output_names(videos)
    old_rows = read_manifest(out / MANIFEST)
    for stale in out.glob(".*.tmp"):  # a killed run's half-written outputs never carried a final name
        stale.unlink(missing_ok=True)
    started_here = not ray.is_initialized()
    reaper = start_reaper() if started_here and not address else None
    if started_here:
        try:
            _init_ray(ray, address, workers)
        except DanmaskError:
            stop_reaper(reaper)
            raise
        watch_children(reaper)
    try:
        driver = _Driver(ray, out, model, part_s, overlap_s, {"threads": threads, "mask_size": mask_size}, progress)
        rows = driver.run([_Video(v, names[v], out / f"{names[v]}.dmask", out / f"{names[v]}.webmask")
                           for v in videos], old_rows)
        _remove_if_empty(out / WORK_DIR)
        return rows
    finally:
        if started_here:
            ray.shutdown()
            stop_reaper(reaper)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # parts of failed videos stay for the next run


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError as exc:
        raise DanmaskError("danmask batch runs on Ray: pip install 'danmask[batch]'") from exc
    return ray


def _init_ray(ray, address: str | None, workers: int | None) -> None:
    options = {"logging_level": "ERROR", "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # a local Ray's workers would run at nice 15 (Ray's default), yielding to every other program; they
            # are this command's own work, so they run at its priority, as a loop of `danmask segment` would
            os.environ.setdefault("RAY_worker_niceness", "0")
            # "local": a Ray of its own, never whichever cluster was last started on this machine (Ray's default)
            ray.init(address="local", num_cpus=workers, object_store_memory=_OBJECT_STORE_BYTES,
                     include_dashboard=None, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DanmaskError(f"cannot start or reach Ray{' at ' + address if address else ''}: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


class _Driver:
    """Submits the tasks, follows them with ray.wait, and keeps the manifest up to date."""

    def __init__(self, ray, out: Path, model: str, part_s: float, overlap_s: float, options: dict,
                 progress: bool) -> None:
        self.ray, self.out, self.model = ray, out, model
        self.part_s, self.overlap_s, self.options = part_s, overlap_s, options
        opts = {"num_cpus": 1, "max_retries": TASK_RETRIES}
        self.plan = ray.remote(**opts)(plan_task)
        self.segment = ray.remote(**opts)(part_task)
        self.merge = ray.remote(**opts)(merge_task)
        self.refs: dict = {}  # object ref -> (kind, video, part number)
        self.rows: dict[Path, dict] = {}
        self.progress = progress

    def run(self, videos: list[_Video], old_rows: dict[str, dict]) -> list[dict]:
        from tqdm import tqdm

        show = self.progress and sys.stderr.isatty()
        self.bar = tqdm(total=len(videos), unit="video", desc="videos", file=sys.stderr, disable=not show)
        self.frames = tqdm(total=0, unit="frame", desc="frames", file=sys.stderr, disable=not show, position=1)
        self.order = [v.path for v in videos]
        try:
            for video in videos:
                if video.dmask.is_file() and video.webmask.is_file():
                    self._finished(video, old_rows.get(str(video.path)) or self._row_from_outputs(video))
                else:
                    self._submit("plan", video, self.plan.remote(str(video.path), self.part_s, self.overlap_s))
            while self.refs:
                ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=0.5)  # a timeout lets Ctrl-C in
                for ref in ready:
                    self._collect(ref)
        finally:
            self.bar.close()
            self.frames.close()
        return [self.rows[path] for path in self.order]

    def _submit(self, kind: str, video: _Video, ref, number: int = -1) -> None:
        self.refs[ref] = (kind, video, number)

    def _collect(self, ref) -> None:
        kind, video, number = self.refs.pop(ref)
        if video.failed:
            return
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # a task's error (RayTaskError wraps it) or a worker that died every retry
            self._failed(video, _one_line(exc))
            return
        if kind == "plan":
            self._planned(video, *result)
        elif kind == "part":
            frames, seconds = result
            video.seconds += seconds
            self.frames.update(frames)
            video.waiting.discard(number)
            if not video.waiting:
                self._merge(video)
        else:
            frames, seconds, duration = result
            video.seconds += seconds
            shutil.rmtree(video.work, ignore_errors=True)
            self._finished(video, row(video.path, output=video.dmask, webmask=video.webmask, frames=frames,
                                      seconds=video.seconds, video_seconds=duration, model=self.model, status="done"))

    def _planned(self, video: _Video, parts: list[Part], expected: int | None) -> None:
        video.parts = parts
        video.work = self.out / WORK_DIR / f"{video.name}-{self._work_key(video)}"
        video.work.mkdir(parents=True, exist_ok=True)
        self.frames.total += expected or 0
        self.frames.refresh()
        for part in parts:
            path = self._part_path(video, part)
            if path.is_file():
                continue  # done by an earlier run
            video.waiting.add(part.number)
            self._submit("part", video, self.segment.remote(str(video.path), part, str(path), self.model,
                                                            self.options), part.number)
        if not video.waiting:
            self._merge(video)

    def _merge(self, video: _Video) -> None:
        paths = [str(self._part_path(video, part)) for part in video.parts]
        self._submit("merge", video, self.merge.remote(video.parts, paths, str(video.dmask), str(video.webmask)))

    def _part_path(self, video: _Video, part: Part) -> Path:
        return video.work / f"part-{part.number:04d}.dmask"

    def _work_key(self, video: _Video) -> str:
        """Parts are reused only by a rerun with the same video (size, time) and the same settings."""
        stat = video.path.stat()
        key = json.dumps([str(video.path), stat.st_size, stat.st_mtime_ns, self.model, self.part_s, self.overlap_s,
                          self.options.get("mask_size")])
        return hashlib.sha1(key.encode()).hexdigest()[:10]

    def _failed(self, video: _Video, error: str) -> None:
        video.failed = True
        self._finished(video, row(video.path, seconds=video.seconds, model=self.model, status="failed", error=error))

    def _finished(self, video: _Video, result: dict) -> None:
        self.rows[video.path] = result
        self.bar.update(1)
        write_manifest(self.out / MANIFEST, [self.rows[p] for p in self.order if p in self.rows])

    def _row_from_outputs(self, video: _Video) -> dict:
        """A row for outputs a killed run completed before it could write the manifest."""
        from ..trackreader import TrackReader

        with TrackReader(video.dmask, people=False) as track:
            return row(video.path, output=video.dmask, webmask=video.webmask, frames=len(track),
                       video_seconds=track.duration_s, model=self.model, status="done")


def _one_line(exc: BaseException) -> str:
    """The message of a task's error: the original DanmaskError's, else the error type and its first line."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, DanmaskError):
        return str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else 'no message'}"
