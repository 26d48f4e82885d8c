"""Start ``python app.py`` (or any server script) on a free loopback port, read its memory, stop it.

Standalone on purpose: the harness talks to the app only over HTTP, so it keeps working whatever
the package layout is. Only what ``python app.py`` promises is used: it honours
``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` and serves its page when ready.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The app allows one fine-tune per visitor (by IP); every client of the load test is 127.0.0.1 and the load
# runs two fine-tunes at once, so the app under test allows two per address. Likewise each fault case opens a
# session or two from that one address (a few hundred in a run, against the 300 per 10 minutes a visitor may open)
# and uploads count against a visitor's 200 MB an hour: the load test's app stands for many visitors, so it allows
# more. The caps themselves are checked on an app of their own (benchmarks/loadtest/visitor_faults.py).
APP_ENV = {"CNNDEMO_RUNS_PER_VISITOR": "2", "CNNDEMO_SESSIONS_PER_VISITOR": "10000",
           "CNNDEMO_UPLOAD_MB_PER_HOUR": "10000"}


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no VmRSS for pid {pid}")


class AppProcess:
    """A server subprocess on ``127.0.0.1:<free port>``; ``url``, ``pid``, ``startup_seconds``, ``rss_mb()``.

    ``script`` is run with this Python in the repository root; ``env`` entries override the
    environment (a value of ``None`` removes the variable). Output goes to a log file (a pipe
    nobody reads would block the server); ``log_tail()`` reads it. Use as a context manager.
    """

    def __init__(self, script: str | list[str] = "app.py", env: dict[str, str | None] | None = None,
                 timeout: float = 300.0, poll: float = 0.1):
        self.poll = poll  # how often the page is tried while starting (start-up timing resolution)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full = {**os.environ, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1",
                "GRADIO_ANALYTICS_ENABLED": "False"}
        for key, value in {**(APP_ENV if script == "app.py" else {}), **(env or {})}.items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        args = [script] if isinstance(script, str) else list(script)
        self.log = tempfile.NamedTemporaryFile("w+", prefix="cnndemo-loadtest-", suffix=".log", delete=False)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        self.pid = self.proc.pid
        try:
            self._wait_served(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t0

    def _wait_served(self, timeout: float) -> None:
        t0 = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{self.url} not served within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(self.poll)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self.log.name).read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def __enter__(self) -> "AppProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
