"""Load: N concurrent gradio_client clients on the app while 2 fine-tunes stream, beside a bare Gradio app.

Each client (its own ``Client``, i.e. its own session) makes ``requests`` calls cycling through the
work mix of :mod:`benchmarks.loadtest.workload`, starting at a different item. All clients are
connected before the clock starts and released together. Every answer is checked against its
reference; any exception is an error. The bare app (``/noop``) gets the same clients x requests
with the same image files, so its p50 / p95 / requests per second are Gradio's own floor.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gradio_client import Client, handle_file

from benchmarks.loadtest.workload import Work, call, percentile, references, verify, work_items

FINETUNE = ("residual_net", "mnist", "scratch", 1, 3e-3, 64, "adam", 5000, False, False)  # seconds of training


@dataclass
class Figures:
    """Latencies (s) of one load run and what went wrong."""

    label: str
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def line(self) -> str:
        return (f"{self.label}: {self.requests} requests in {self.wall:.1f} s, p50 {1000 * percentile(self.latencies, 50):.0f} ms, "
                f"p95 {1000 * percentile(self.latencies, 95):.0f} ms, {self.requests / max(self.wall, 1e-9):.1f} requests/s, "
                f"{len(self.errors)} errors, {len(self.wrong)} wrong answers")


def _connect(url: str, n: int) -> list[Client]:
    with ThreadPoolExecutor(min(n, 16)) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False), range(n)))


def _run_clients(clients: list[Client], requests: int, one_call, label: str, deadline_s: float) -> Figures:
    """Every client makes ``requests`` calls of ``one_call(client, client_index, k)``; released together."""
    figs = Figures(label)
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        start.wait()
        for k in range(requests):
            if time.perf_counter() > stop_at[0]:
                with lock:
                    figs.errors.append(f"client {i}: deadline of {deadline_s:.0f} s reached after {k} requests")
                return
            t0 = time.perf_counter()
            try:
                problem = one_call(clients[i], i, k)
            except Exception as exc:  # noqa: BLE001 - every exception is an error of the run
                with lock:
                    figs.errors.append(f"client {i} #{k}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            with lock:
                figs.latencies.append(time.perf_counter() - t0)
                if problem:
                    figs.wrong.append(f"client {i} #{k}: {problem}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(clients))]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + deadline_s
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(max(1.0, stop_at[0] + 30 - time.perf_counter()))
    figs.wall = time.perf_counter() - t0
    return figs


def _finetunes(url: str, n: int, results: list) -> list[threading.Thread]:
    """Start ``n`` streaming fine-tunes (one session each); ``results`` gets (phase, updates, message) each."""

    def run() -> None:
        try:
            job = Client(url, verbose=False).submit(*FINETUNE, api_name="/finetune")
            updates = sum(1 for _ in job)
            final = job.outputs()[-1][-1] if job.outputs() else None
            phase = final.get("phase") if isinstance(final, dict) else None
            results.append((phase, updates, "" if phase == "done" else str(final)[:300]))
        except Exception as exc:  # noqa: BLE001
            results.append(("exception", 0, f"{type(exc).__name__}: {exc}"))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


@dataclass
class LoadResult:
    app: Figures
    bare: Figures | None
    finetunes: list  # (phase, updates, message) per fine-tune
    items: int

    def problems(self) -> list[str]:
        out = self.app.errors + self.app.wrong
        out += [f"fine-tune ended {p} after {u} updates: {m}" for p, u, m in self.finetunes if p != "done"]
        if self.bare is not None:
            out += [f"bare app: {e}" for e in self.bare.errors]
        return out

    def report(self) -> str:
        lines = [f"load: {self.items} checked work items (/classify x 5 networks, /feature_maps, /inception_branches, "
                 "/residual_blocks on real test images)", "  " + self.app.line()]
        if self.bare is not None:
            lines.append("  " + self.bare.line())
        lines.append("  fine-tunes during the load: " + ", ".join(f"{p} ({u} updates)" for p, u, _ in self.finetunes))
        return "\n".join(lines)


def run(url: str, clients: int = 50, requests: int = 10, finetunes: int = 2, bare_url: str | None = None,
        deadline_s: float = 300.0, every: int = 1) -> LoadResult:
    """The load test against the app at ``url`` (and the bare app at ``bare_url`` afterwards).

    ``every``: use every ``every``-th work item only (the short form: fewer references to take first).
    """
    refs, items = references(url, work_items()[::every])
    conns = _connect(url, clients)

    def app_call(client: Client, i: int, k: int) -> str | None:
        work: Work = items[(i * 7 + k) % len(items)]
        return verify(work, call(client, work), refs)

    ft_results: list = []
    ft_threads = _finetunes(url, finetunes, ft_results)
    app = _run_clients(conns, requests, app_call, "app ", deadline_s)
    for t in ft_threads:
        t.join(180)
    if len(ft_results) < finetunes:
        ft_results += [("unfinished", 0, "no final update within 180 s after the load")] * (finetunes - len(ft_results))
    bare = None
    if bare_url:
        bare_conns = _connect(bare_url, clients)
        bare = _run_clients(bare_conns, requests,
                            lambda c, i, k: None if c.predict(handle_file(items[(i * 7 + k) % len(items)].image),
                                                              api_name="/noop") else "no answer",
                            "bare", deadline_s)
    return LoadResult(app, bare, ft_results, len(items))
