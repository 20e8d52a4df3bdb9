"""Segmentation jobs of the service: a bounded pool of worker processes on this machine, or tasks on Ray.

A job reads the upload, writes `mask.dmask` and `mask.webmask` beside it (each appears only when complete) and
records its status and progress in the store itself, so the server only submits. A server that is killed loses
no job: the store still says queued or running, and `JobRunner.resume` submits those again at start-up (a
job simply runs again from the start; a worker left from the killed server ends itself when its parent is gone).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

PROGRESS_EVERY_S = 0.5


def run_job(folder: str, db_url: str, video_id: str, model: str) -> str:
    """Segment the video in `folder` (its `source.*`) into its mask files; returns the final status."""
    from ..errors import DanmaskError
    from ..pipeline import segment_video
    from ..webmask import write_webmask
    from .store import Store

    store = Store(db_url)
    try:
        store.update(video_id, status="running", progress=0.0)
        last = [0.0]

        def report(done: int, total: int | None) -> None:
            now = time.monotonic()
            if total and now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                store.update(video_id, progress=min(0.99, done / total))

        source = next(Path(folder).glob("source.*"))
        track = segment_video(source, model, output=Path(folder) / "mask.dmask", progress=report)
        with track:
            write_webmask(track, Path(folder) / "mask.webmask")
            store.update(video_id, status="done", progress=1.0, frames=len(track))
        return "done"
    except (DanmaskError, StopIteration, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        store.update(video_id, status="failed", error=message.replace(str(folder) + "/", ""))
        return "failed"
    finally:
        store.close()


def _exit_with_parent() -> None:
    """Worker initializer: end this process when the server that started it is gone (killed, even by SIGKILL)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="danmask-parent-watch", daemon=True).start()


class JobRunner:
    """Submits jobs to `workers` local processes, or to Ray at `address`."""

    def __init__(self, data: Path, db_url: str, model: str, workers: int = 1, address: str | None = None) -> None:
        self.data, self.db_url, self.model = data, db_url, model
        self._ray = None
        if address:
            import ray

            if not ray.is_initialized():
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            self._ray = ray.remote(num_cpus=1, max_retries=3)(run_job)
            self._pool = None
        else:
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                             initializer=_exit_with_parent)

    def submit(self, video_id: str) -> None:
        args = (str(self.data / "videos" / video_id), self.db_url, video_id, self.model)
        if self._ray is not None:
            self._ray.remote(*args)
        else:
            self._pool.submit(run_job, *args)

    def resume(self, video_ids: list[str]) -> None:
        """Submit again the jobs a previous server left queued or running."""
        for video_id in video_ids:
            self.submit(video_id)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
