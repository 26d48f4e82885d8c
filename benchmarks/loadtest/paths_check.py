"""What counts as a server path in an answer of the app, and the example shelf's click event (issue 18).

:func:`server_paths` finds, in any text (``/config``, ``/gradio_api/info``, an event's answer), a path under the
repository, the home folder or the Python install, or any absolute path outside Gradio's cache folder
(``GRADIO_TEMP_DIR``, else ``<tempdir>/gradio``). Gradio's own URLs of files in its cache
(``/gradio_api/file=<cache>/<hash>/x.png``) are Gradio's file serving and are allowed. Used by the ``paths``
fault cases (:mod:`benchmarks.loadtest.faults_paths`) and tests/test_server_paths.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.app_control import ROOT
from benchmarks.loadtest.rawhttp import Reply

# An absolute path: a slash that does not continue a word, a base64 run or a URL's host.
ABSOLUTE = re.compile(r"(?<![\w.~+/-])/(?:[\w.+~-]+/)*[\w.+~-]+")
SHELF = "MNIST digits"  # the label of the MNIST examples' shelf (catalog.DATASETS["mnist"].title)


def gradio_cache() -> Path:
    """Gradio's cache folder for an app started with this environment."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def _forbidden_prefixes() -> set[str]:
    out = {str(ROOT), os.path.realpath(ROOT), sys.prefix, os.path.realpath(sys.prefix)}
    home = str(Path.home())
    if home not in ("/", ""):
        out |= {home, os.path.realpath(home)}
    return {p for p in out if p not in ("/", "")}


def server_paths(text: str) -> list[str]:
    """Every server path in ``text`` (see the module docstring), in order of the checks, with repeats."""
    top_level = set(os.listdir("/"))
    caches = {str(gradio_cache()), os.path.realpath(gradio_cache())}
    found = []
    for path in ABSOLUTE.findall(text):
        if path.split("/")[1] not in top_level:
            continue  # a URL path (/gradio_api/..., /classify), not a file of this machine
        real = os.path.normpath(path)
        if not any(real == c or real.startswith(c + "/") for c in caches):
            found.append(path)
    for prefix in _forbidden_prefixes():  # also where no absolute path starts (e.g. inside a word)
        found += [prefix] * max(0, text.count(prefix) - sum(p.startswith(prefix) for p in found))
    return found


def shelf_click(url: str, title: str = SHELF) -> dict:
    """The click event of the examples' shelf labelled ``title``, from the app's ``/config``."""
    config = httpx.get(f"{url.rstrip('/')}/config", timeout=rawhttp.TIMEOUT).json()
    shelf = next(c["id"] for c in config["components"] if c["type"] == "dataset" and c["props"].get("label") == title)
    return next(d for d in config["dependencies"] if [shelf, "click"] in d["targets"])


def join_raw(base: str, fn_index: int, data: str) -> Reply:
    """Like :func:`rawhttp.queue_join`, with ``data`` (a JSON list) sent as written: NaN and Infinity included,
    which httpx's own JSON encoding refuses to send."""
    base, session = base.rstrip("/"), uuid.uuid4().hex[:12]
    body = '{"data": %s, "fn_index": %d, "session_hash": "%s", "event_data": null, "trigger_id": null}' % (
        data, fn_index, session)
    t0 = time.perf_counter()
    with httpx.Client(timeout=rawhttp.TIMEOUT) as h:
        r = h.post(f"{base}/gradio_api/queue/join", content=body.encode(), headers={"content-type": "application/json"})
        if r.status_code != 200:
            return Reply(False, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)
        with h.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                msg = json.loads(line[5:]) if line.startswith("data:") else {}
                if msg.get("msg") == "process_completed":
                    output, seconds = msg.get("output") or {}, time.perf_counter() - t0
                    if msg.get("success"):
                        return Reply(True, "", output.get("data"), seconds)
                    return Reply(False, str(output.get("error")), output, seconds)
    return Reply(False, "the event stream ended without a result", None, time.perf_counter() - t0)
