"""Drive a real `danmask serve` over HTTP: a subprocess on a loopback port, and a bounded load test.

Shared by the service's tests and by the scale benchmark (`python -m danmask.eval.scale`), so the figures in
BENCHMARKS.md come from the same requests the tests check; an operator can point it at a copy of a site's setup.
Standard library only (urllib, threads): nothing to install beyond the server's own extra.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TOKEN = "test-token-0123"
BOUNDARY = "danmask-test-boundary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`danmask serve` in a subprocess on a free loopback port, its stderr in DATA.log beside the data folder."""

    def __init__(self, data: Path, *extra: str, token: str = TOKEN, model: str = "fast") -> None:
        self.data, self.extra, self.token, self.model = Path(data), extra, token, model
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.data.with_name(self.data.name + ".log")

    def start(self, timeout: float = 60) -> Server:
        """Start (or restart, on the same data and port) and wait until the API answers."""
        cmd = [sys.executable, "-m", "danmask.cli", "serve", "--port", str(self.port), "--data", str(self.data),
               "--token", self.token, "--model", self.model, *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"danmask serve exited: {self.log.read_text()[-2000:]}")
            try:
                if self.get("/openapi.json")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("danmask serve did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, body, headers); HTTP errors are answers too, not exceptions."""
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers

    def get(self, path: str, headers: dict | None = None):
        return self.request("GET", path, headers=headers)

    def upload(self, content: bytes, name: str = "clip.mp4", token: str | None = TOKEN):
        body, headers = multipart(name, content)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("POST", "/v1/videos", body, headers)

    def comment(self, video_id: str, **fields):
        return self.request("POST", f"/v1/videos/{video_id}/comments", json.dumps(fields).encode(),
                            {"Content-Type": "application/json"})

    def wait_done(self, video_id: str, timeout: float = 180) -> dict:
        """The job's state once it is done or failed (TimeoutError if it is neither after `timeout` s)."""
        deadline, state = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            state = json.loads(self.get(f"/v1/videos/{video_id}")[1])
            if state["status"] in ("done", "failed"):
                return state
            time.sleep(0.3)
        raise TimeoutError(f"video {video_id} still {state}")


def multipart(name: str, content: bytes) -> tuple[bytes, dict]:
    """A multipart/form-data body with one field `file`, and its Content-Type header."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def load_test(server: Server, clip: Path, clients: int = 8, seconds: float = 8.0, uploads: int = 4) -> dict:
    """Concurrent uploads, status polls and comment posts for a bounded time; latency per request, and a check
    that every accepted comment and upload is there afterwards (comments_lost, uploads_done)."""
    video_ids = [json.loads(server.upload(clip.read_bytes(), token=server.token)[1])["id"] for _ in range(2)]
    content = clip.read_bytes()
    latencies: list[float] = []
    posted: dict[str, list[str]] = {v: [] for v in video_ids}
    uploaded: list[str] = []
    errors: list[str] = []
    peak = PeakMemory(server.proc.pid)
    stop_at = time.monotonic() + seconds

    def client(k: int) -> None:
        n = 0
        while time.monotonic() < stop_at:
            video_id = video_ids[n % len(video_ids)]
            started = time.perf_counter()
            if k == 0 and len(uploaded) < uploads:
                status, body, _ = server.upload(content, token=server.token)
                ok = status == 202
                if ok:
                    uploaded.append(json.loads(body)["id"])
            elif n % 2:
                text = f"client {k} comment {n}"
                status, body, _ = server.comment(video_id, time=0.1 * (n % 10), text=text)
                ok = status == 201
                if ok:
                    posted[video_id].append(text)
            else:
                status, body, _ = server.get(f"/v1/videos/{video_id}")
                ok = status == 200
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(f"{status} {body[:80]!r}")
            n += 1

    started = time.perf_counter()
    with peak, ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - started
    stored = {v: {r["text"] for r in json.loads(server.get(f"/v1/videos/{v}/comments")[1])} for v in video_ids}
    lost = sum(len(set(texts) - stored[v]) for v, texts in posted.items())
    done = [server.wait_done(v)["status"] for v in video_ids + uploaded]
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "seconds": elapsed,
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p95_ms": 1000 * latencies[int(0.95 * len(latencies))],
            "errors": errors, "comments": sum(map(len, posted.values())), "comments_lost": lost,
            "uploads": len(uploaded) + len(video_ids), "uploads_done": done.count("done"),
            "peak_rss_mib": peak.mib}


class PeakMemory:
    """Peak resident memory of a server and its job workers, sampled every 100 ms while in the `with` block: the
    server's own peak (VmHWM) plus the largest sum of its children's current RSS seen (workers come and go)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.children_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        from ..batch.reaper import _descendants

        while not self._stop.wait(0.1):
            self.children_kib = max(self.children_kib, sum(_kib(p, "VmRSS:") for p in _descendants(self.pid)))

    @property
    def mib(self) -> float:
        return (_kib(self.pid, "VmHWM:") + self.children_kib) / 1024


def _kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass  # the process ended between listing and reading
    return 0
