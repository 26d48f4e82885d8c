"""Issue #18's per-visitor cases, against an app of their own (:data:`APP_ENV`: small budgets, one run per visitor).

Every client here is 127.0.0.1, so one visitor; what it tries is what one hostile visitor could: choose its key
with forwarded headers, evict everyone's sessions with a flood of new ones, upload without end, open sessions
without end. Each function returns ``(ok, detail)``.
"""

from __future__ import annotations

import time
import uuid

import httpx
from gradio_client import Client

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.concurrent_faults import LONG

APP_ENV = {"CNNDEMO_RUNS_PER_VISITOR": "1", "CNNDEMO_UPLOAD_MB_PER_HOUR": "3", "CNNDEMO_SESSIONS_PER_VISITOR": "600"}
QUICK = ("residual_net", "mnist", "scratch", 1, 3e-3, 64, "adam", 1000, False, False)  # a few seconds


def spoofed_headers_buy_no_second_run(url: str) -> tuple[bool, str]:
    """A fine-tune runs; a second session with other forwarded headers (and an unsigned x-ip-token) is refused."""
    first = Client(url, verbose=False, headers={"X-Forwarded-For": "1.1.1.1", "x-ip-token": "e30.e30.sig"})
    job = first.submit(*LONG, api_name="/finetune")
    try:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 60:
            outs = job.outputs()
            if outs and isinstance(outs[-1][-1], dict) and outs[-1][-1].get("phase") in ("training", "error", "done"):
                break
            time.sleep(0.2)
        second = Client(url, verbose=False, headers={"X-Forwarded-For": "2.2.2.2", "x-ip-token": "e30.e31.sig"})
        try:
            outputs = second.submit(*QUICK, api_name="/finetune").result(timeout=60)
            metrics = outputs[-1] if isinstance(outputs[-1], dict) else {}
            answer = str(metrics.get("message", metrics))
        except Exception as exc:  # noqa: BLE001 - refused runs end with an error
            answer = str(exc)
    finally:
        first.predict(api_name="/finetune_stop")
        try:
            job.result(timeout=60)
        except Exception:  # noqa: BLE001
            pass
    refused = "already" in answer.lower() or "one " in answer.lower() and "visitor" in answer.lower()
    return refused, answer[:300]


def upload_budget_is_bounded(url: str, mb: int = 3) -> tuple[bool, str]:
    """1 MB uploads until refused: the visitor's hourly budget (``mb``) ends them, with one line."""
    statuses = []
    for i in range(mb + 3):
        r = rawhttp.upload(url, f"f{i}.png", b"\x89PNG" + bytes((1 << 20) - 100))
        statuses.append(r.status_code)
        if r.status_code != 200:
            return (r.status_code == 429 and "budget" in r.text.lower() and i <= mb, f"upload {i + 1}: {r.text[:200]}")
    return False, f"{len(statuses)} uploads of 1 MB all accepted: {statuses}"


def flood_evicts_no_model(url: str, sessions: int = 520) -> tuple[bool, str]:
    """A session fine-tunes; ``sessions`` cheap requests with new sessions follow; its model is still there."""
    owner = Client(url, verbose=False)
    outputs = owner.submit(*QUICK, api_name="/finetune").result(timeout=120)
    metrics = outputs[-1] if isinstance(outputs[-1], dict) else {}
    if metrics.get("phase") != "done":
        return False, f"the fine-tune did not finish: {str(metrics)[:200]}"
    base = url.rstrip("/")
    t0 = time.perf_counter()
    refused = 0
    with httpx.Client(timeout=30) as h:
        for _ in range(sessions):
            r = h.post(f"{base}/gradio_api/call/finetune_forget", json={"data": []})
            refused += r.status_code == 429
            if r.status_code == 200:
                h.get(f"{base}/gradio_api/call/finetune_forget/{r.json()['event_id']}")
    answer = str(owner.predict(api_name="/finetune_use"))
    ok = "now use your fine-tuned" in answer
    return ok, f"after {sessions} new sessions ({refused} refused, {time.perf_counter() - t0:.1f} s): {answer[:160]}"


def new_sessions_are_capped(url: str, at_most: int = 700) -> tuple[bool, str]:
    """New session hashes (the browser's queue/join) until refused: the visitor's cap ends them, with one line."""
    dep = rawhttp.dependency_id(url, "finetune_forget")
    base = url.rstrip("/")
    with httpx.Client(timeout=30) as h:
        for i in range(at_most):
            r = h.post(f"{base}/gradio_api/queue/join", json={"data": [], "fn_index": dep, "event_data": None,
                                                              "session_hash": uuid.uuid4().hex[:12]})
            if r.status_code != 200:
                return r.status_code == 429 and "sessions" in r.text, f"session {i + 1}: {r.text[:200]}"
    return False, f"{at_most} new sessions from one address, none refused"


# In this order: the session cap is used up last.
CASES = (spoofed_headers_buy_no_second_run, upload_budget_is_bounded, flood_evicts_no_model, new_sessions_are_capped)
