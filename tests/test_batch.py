"""`danmask batch` on a real local Ray: six videos (one split into parts) and a bad one, the driver SIGKILLed
part-way and the same command run again, a worker SIGKILLed mid-task; outputs checked against one
`segment_video` run, frame by frame."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="danmask batch needs Ray: pip install 'danmask[batch]'")

from danmask.batch.reaper import _descendants  # noqa: E402
from danmask.pipeline import segment_video  # noqa: E402
from danmask.synthetic import make_video  # noqa: E402
from danmask.trackreader import TrackReader  # noqa: E402
from danmask.webmask import read_webmask  # noqa: E402

MODEL = "fast"
BATCH = ["--model", MODEL, "--workers", "2", "--part-seconds", "2", "--overlap", "1", "-q"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Six short clips (the longest, 8 s, is cut into parts) and a file that is not a video, in one folder."""
    folder = tmp_path_factory.mktemp("catalog")
    for i, frames in enumerate((45, 60, 75, 90, 105, 240)):
        make_video(folder / f"clip{i}.mp4", frames=frames, shape=(90, 160), seed=i, cut_at=frames // 2)
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    return folder


@pytest.fixture(scope="module")
def reference(catalog):
    """One uninterrupted segment_video run per clip: what the batch must match."""
    return {p.name: segment_video(p, MODEL) for p in sorted(catalog.glob("clip*.mp4"))}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def check_outputs(out: Path, catalog: Path, reference: dict) -> list[dict]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    by_name = {Path(r["input"]).name: r for r in rows}
    assert len(rows) == 7 and by_name["broken.mp4"]["status"] == "failed"
    assert "\n" not in by_name["broken.mp4"]["error"] and "cannot open" in by_name["broken.mp4"]["error"]
    for name, ref in reference.items():
        r = by_name[name]
        assert r["status"] == "done" and r["frames"] == len(ref) and r["model"] == MODEL, r
        with TrackReader(r["output"]) as track:
            got = list(track.items())
        assert [p for p, _ in got] == ref.pts  # the same frames as one run
        ious = [iou(m >= 128, want >= 128) for (_, m), want in zip(got, ref.masks)]
        assert min(ious) >= 0.98, (name, min(ious))
        assert len(read_webmask(r["webmask"])) == len(ref)
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.name != "manifest.jsonl"
                 and p.suffix not in (".dmask", ".webmask")]
    assert not leftovers and not (out / ".danmask-batch").exists()
    return rows


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def test_driver_killed_part_way_then_rerun(catalog, reference, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "danmask.cli", "batch", str(catalog), "-o", str(out), *BATCH]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once some parts are done but not all videos
        parts = list((out / ".danmask-batch").rglob("part-*.dmask")) if out.exists() else []
        if parts or driver.poll() is not None:
            break
        time.sleep(0.1)
    ray_processes = _descendants(driver.pid)
    assert driver.poll() is None, driver.stderr.read().decode()
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(3)
    assert not alive(ray_processes), "Ray processes outlived their killed driver"
    for path in out.glob("*.dmask"):  # whatever has a final name is complete
        with TrackReader(path) as track:
            assert len(track) > 0
    assert not list(out.glob("*.part"))
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 2, rerun.stderr
    assert rerun.stderr.count("\n") == 1 and "1 of 7 videos failed" in rerun.stderr, rerun.stderr
    check_outputs(out, catalog, reference)
    # a third run has nothing left to do
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "6 of 7 videos done" in again.stdout
    check_outputs(out, catalog, reference)


def test_merge_shows_nothing_in_the_output_folder_until_complete(catalog, reference, tmp_path, monkeypatch):
    """A driver killed mid-merge must leave no file of any name in the output folder: while the joined track and
    its .webmask are written, the folder holds only the work folder; then both appear, whole."""
    from danmask.batch import merge as merge_module
    from danmask.batch.plan import plan_parts
    from danmask.batch.run import WORK_DIR, merge_task, part_task
    from danmask.trackwriter import TrackWriter

    clip = catalog / "clip5.mp4"
    out = tmp_path / "out"
    work = out / WORK_DIR / "clip5-key"
    work.mkdir(parents=True)
    parts = plan_parts(clip, 2, 1)
    assert len(parts) > 1
    paths = [str(work / f"part-{part.number:04d}.dmask") for part in parts]
    for part, path in zip(parts, paths):
        part_task(str(clip), part, path, MODEL, {})
    seen: list[list[str]] = []
    append, write_webmask = TrackWriter.append, merge_module.write_webmask

    def watch_append(self, *args, **kwargs):
        if self.frames == 100:
            seen.append(sorted(p.name for p in out.iterdir()))
        return append(self, *args, **kwargs)

    def watch_webmask(*args, **kwargs):
        seen.append(sorted(p.name for p in out.iterdir()))
        return write_webmask(*args, **kwargs)

    monkeypatch.setattr(TrackWriter, "append", watch_append)
    monkeypatch.setattr(merge_module, "write_webmask", watch_webmask)
    frames, _, _ = merge_task(parts, paths, str(out / "clip5.dmask"), str(out / "clip5.webmask"))
    assert seen == [[WORK_DIR], [WORK_DIR]]
    assert sorted(p.name for p in out.iterdir()) == sorted([WORK_DIR, "clip5.dmask", "clip5.webmask"])
    with TrackReader(out / "clip5.dmask") as track:
        assert [p for p, _ in track.items()] == reference["clip5.mp4"].pts and frames == len(track)


def test_a_worker_killed_mid_task_is_retried(catalog, reference, tmp_path):
    """In-process, on a Ray the test starts itself: one worker running a part is SIGKILLed; Ray retries it."""
    import ray

    from danmask.batch.run import run_batch

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=96 << 20,
             logging_level="ERROR", log_to_driver=False)
    try:
        killed: list[int] = []
        stop = threading.Event()

        def kill_one_worker() -> None:
            while not stop.is_set() and not killed:
                for pid in _descendants(os.getpid()):
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if b"part_task" in cmdline:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        return
                time.sleep(0.02)

        hunter = threading.Thread(target=kill_one_worker)
        hunter.start()
        try:
            run_batch([catalog], tmp_path / "out", model=MODEL, part_s=2, overlap_s=1)
        finally:
            stop.set()
            hunter.join()
        assert killed, "no worker was seen running a part"
        check_outputs(tmp_path / "out", catalog, reference)
    finally:
        ray.shutdown()


def test_on_a_running_cluster_with_address(catalog, reference, tmp_path):
    """`--address`: the driver joins a Ray head started beforehand (as on a cluster) and leaves it running."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--node-ip-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        clips = [catalog / "clip0.mp4", catalog / "clip5.mp4"]
        deadline = time.monotonic() + 120
        while True:
            done = subprocess.run([sys.executable, "-m", "danmask.cli", "batch", *map(str, clips), "-o",
                                   str(tmp_path / "out"), "--address", f"127.0.0.1:{port}", *BATCH[:2],
                                   "--part-seconds", "2", "--overlap", "1", "-q"], capture_output=True, text=True)
            if done.returncode == 0 or time.monotonic() > deadline or "cannot start or reach" not in done.stderr:
                break
            time.sleep(2)  # the head is still starting
        assert done.returncode == 0, done.stderr
        assert head.poll() is None  # the cluster is not the driver's to stop
        for clip in clips:
            with TrackReader(tmp_path / "out" / f"{clip.stem}.dmask") as track:
                assert [p for p, _ in track.items()] == reference[clip.name].pts
        # without --address the driver starts a Ray of its own, never joining the head last started here
        local = subprocess.run([sys.executable, "-m", "danmask.cli", "batch", str(clips[0]), "-o",
                                str(tmp_path / "local"), *BATCH], capture_output=True, text=True, timeout=300)
        assert local.returncode == 0 and (tmp_path / "local" / "clip0.dmask").is_file(), local.stderr
    finally:
        pids = _descendants(head.pid)
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        for pid in alive(pids):
            os.kill(pid, signal.SIGKILL)
