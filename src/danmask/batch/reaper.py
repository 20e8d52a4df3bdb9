"""Ends the processes a local Ray leaves behind when its driver is killed (SIGKILL runs no clean-up).

Ray's GCS and raylet die with the driver that started them, but their agents (dashboard, runtime-env) are
re-parented and live on. `start_reaper` starts a small watchdog process that is handed the pids (with their start
times, so a reused pid is never hit) of the driver's descendants once Ray is up; when the pipe from the driver
closes, by exit or by kill, it sends SIGKILL to those still running. Linux only (/proc); elsewhere it does nothing.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def start_reaper() -> subprocess.Popen | None:
    """The watchdog, in its own session (a Ctrl-C of the driver does not reach it); None off Linux."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "danmask.batch.reaper"], stdin=subprocess.PIPE,
                            start_new_session=True)


def watch_children(reaper: subprocess.Popen | None) -> None:
    """Hand the watchdog every current descendant of this process (but itself)."""
    if reaper is None:
        return
    lines = [f"{pid} {_start_time(pid)}\n" for pid in _descendants(os.getpid()) if pid != reaper.pid]
    reaper.stdin.write("".join(lines).encode())
    reaper.stdin.flush()


def stop_reaper(reaper: subprocess.Popen | None) -> None:
    """Normal end: close the pipe (the watchdog ends what is left, then exits) and wait for it."""
    if reaper is not None:
        reaper.stdin.close()
        reaper.wait()


def main() -> None:
    watched = []
    for line in sys.stdin:
        pid, started = line.split()
        watched.append((int(pid), started))
    for pid, started in watched:  # the driver is gone
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # ended by itself in the meantime


if __name__ == "__main__":
    main()
