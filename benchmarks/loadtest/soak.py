"""Soak: thousands of requests with the app's memory (RSS from /proc/PID/status) sampled.

A few concurrent clients cycle through the checked work mix until ``requests`` calls are done (or
the deadline passes). The images are uploaded once and each call is raw HTTP (``/gradio_api/call``),
so the harness's own CPU use stays small beside the app's on a 2-core machine; answers are checked
against the references taken with ``gradio_client`` first. RSS is read every ``sample_every`` completed requests. After warm-up (the
first ``warmup`` fraction of the requests) a least-squares line is fitted to RSS against the
request count: its slope, in MB per 1,000 requests, is the growth trend.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import httpx

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.app_control import rss_mb
from benchmarks.loadtest.workload import Work, percentile, references, verify, work_items


def _paths(value):
    """A raw answer in gradio_client's shape: every FileData dict replaced by its path."""
    if isinstance(value, dict):
        if (value.get("meta") or {}).get("_type") == "gradio.FileData":
            return value["path"]
        return {k: _paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_paths(v) for v in value]
    return value


def _raw_call(h: httpx.Client, base: str, work: Work, server_path: str, session: str):
    # One session per worker, as gradio_client has one per Client: without a session_hash every call
    # would be a new Gradio session, whose state the app keeps (that is per-session memory, not a leak).
    body = {"data": [rawhttp.file_data(server_path), *work.args], "session_hash": session}
    r = h.post(f"{base}/gradio_api/call/{work.api.strip('/')}", json=body)
    r.raise_for_status()
    event, data = None, None
    with h.stream("GET", f"{base}/gradio_api/call/{work.api.strip('/')}/{r.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line[5:].strip()
                break
    if event != "complete":
        raise RuntimeError(f"{event}: {data}")
    out = _paths(json.loads(data))
    return out[0] if len(out) == 1 else tuple(out)


@dataclass
class SoakResult:
    requests: int = 0
    seconds: float = 0.0
    samples: list[tuple[int, float]] = field(default_factory=list)  # (requests done, RSS MB)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    warmup: float = 0.2

    @property
    def slope_mb_per_1000(self) -> float:
        """Least-squares slope of RSS (MB) per 1,000 requests, after warm-up."""
        start = self.warmup * self.requests
        pts = [(n, m) for n, m in self.samples if n >= start]
        if len(pts) < 3:
            return float("nan")
        mx = sum(n for n, _ in pts) / len(pts)
        my = sum(m for _, m in pts) / len(pts)
        sxx = sum((n - mx) ** 2 for n, _ in pts)
        return 1000 * sum((n - mx) * (m - my) for n, m in pts) / sxx if sxx else float("nan")

    def report(self) -> str:
        first, last = self.samples[0][1], self.samples[-1][1]
        peak = max(m for _, m in self.samples)
        return (f"soak: {self.requests} requests in {self.seconds:.0f} s ({self.requests / max(self.seconds, 1e-9):.1f}/s, "
                f"p50 {1000 * percentile(self.latencies, 50):.0f} ms, p95 {1000 * percentile(self.latencies, 95):.0f} ms), "
                f"{len(self.errors)} errors; RSS {first:.0f} -> {last:.0f} MB (peak {peak:.0f}), "
                f"slope after {self.warmup:.0%} warm-up: {self.slope_mb_per_1000:+.2f} MB per 1,000 requests "
                f"({len(self.samples)} samples)")


def run(url: str, pid: int, requests: int = 5000, clients: int = 4, sample_every: int = 50,
        deadline_s: float = 600.0, warmup: float = 0.2, every: int = 3) -> SoakResult:
    """Soak the app at ``url`` (process ``pid``) with ``requests`` checked calls from ``clients`` sessions."""
    refs, items = references(url, work_items()[::every])
    base = url.rstrip("/")
    uploads = {}
    for image in sorted({w.image for w in items}):
        with open(image, "rb") as f:
            uploads[image] = rawhttp.upload(base, image.rsplit("/", 1)[-1], f.read()).json()[0]
    result = SoakResult(warmup=warmup)
    sessions: list[httpx.Client] = []
    result.samples.append((0, rss_mb(pid)))
    lock = threading.Lock()
    counter = iter(range(requests))
    t_end = time.perf_counter() + deadline_s

    def worker(i: int) -> None:
        h = httpx.Client(timeout=30)
        sessions.append(h)  # closed after the run
        for k in counter:  # shared: each request number is taken by exactly one worker
            if time.perf_counter() > t_end:
                with lock:
                    result.errors.append(f"deadline of {deadline_s:.0f} s reached at request {k}")
                return
            work = items[(k * 5 + i) % len(items)]
            t0 = time.perf_counter()
            try:
                problem = verify(work, _raw_call(h, base, work, uploads[work.image], f"soak-{i}"), refs)
            except Exception as exc:  # noqa: BLE001
                problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            with lock:
                result.latencies.append(time.perf_counter() - t0)
                result.requests += 1
                if problem:
                    result.errors.append(f"#{k} {work.key}: {problem}")
                if result.requests % sample_every == 0:
                    result.samples.append((result.requests, rss_mb(pid)))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, t_end + 30 - time.perf_counter()))
    result.seconds = time.perf_counter() - t0
    for h in sessions:
        h.close()
    result.samples.append((result.requests, rss_mb(pid)))
    return result
