"""Concurrent Stop / Use / Forget on one session (the fault catalogue's "concurrency" group).

One ``gradio_client.Client`` is one session. While its fine-tune trains, nine threads hit
``/finetune_stop``, ``/finetune_use`` and ``/finetune_forget`` at once, and a second fine-tune is
started in the same session. Every answer must be one of the app's known messages, each within the
time limit; the run must end stopped, and Use / Forget must then work.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client

from benchmarks.loadtest.rawhttp import Reply

KNOWN = re.compile(r"Stopping|Nothing is training|Nothing fine-tuned|now use your fine-tuned|pretrained models")
LONG = ("residual_net", "mnist", "scratch", 3, 3e-3, 64, "adam", 20000, False, False)  # ~20 s of training


def _hammer(client: Client, rounds: int = 3) -> tuple[list[str], float]:
    """(answers, slowest seconds) of ``rounds`` x (stop, use, forget) sent all at once."""

    def one(api: str) -> tuple[str, float]:
        t0 = time.perf_counter()
        try:
            value = client.predict(api_name=api)
        except Exception as exc:  # noqa: BLE001
            value = f"ERROR {type(exc).__name__}: {exc}"
        return str(value), time.perf_counter() - t0

    apis = ["/finetune_stop", "/finetune_use", "/finetune_forget"] * rounds
    with ThreadPoolExecutor(len(apis)) as pool:
        results = list(pool.map(one, apis))
    return [r[0] for r in results], max(r[1] for r in results)


def _unknown(answers: list[str]) -> list[str]:
    return [a[:200] for a in answers if not KNOWN.search(a)]


def stop_use_forget_fresh(ctx) -> Reply:
    """A session that never fine-tuned: all nine answers are the polite "nothing" messages."""
    client = Client(ctx.url, verbose=False)
    answers, slowest = _hammer(client)
    bad = _unknown(answers)
    return Reply(not bad, "; ".join(bad), answers, slowest)


def racing_stop_use_forget(ctx) -> Reply:
    """Stop / Use / Forget racing a running fine-tune (and a second fine-tune in the same session)."""
    client = Client(ctx.url, verbose=False)
    job = client.submit(*LONG, api_name="/finetune")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:
        outs = job.outputs()
        if outs and isinstance(outs[-1][-1], dict) and outs[-1][-1].get("phase") in ("training", "error", "done"):
            break
        time.sleep(0.1)
    else:
        job.cancel()
        return Reply(False, "the fine-tune did not start training within 60 s")
    problems = []
    second = client.submit(*LONG, api_name="/finetune").result(timeout=30)[-1]
    if not (isinstance(second, dict) and second.get("phase") == "error"):
        problems.append(f"a second fine-tune in the same session was not refused: {str(second)[:200]}")
    answers, slowest = _hammer(client)
    problems += _unknown(answers)
    if not any("Stopping" in a for a in answers):
        problems.append("no Stop was acknowledged while training")
    t_stop = time.perf_counter()
    final = job.result(timeout=30)[-1]
    stop_seconds = time.perf_counter() - t_stop
    if not (isinstance(final, dict) and final.get("phase") == "done" and final.get("stopped")):
        problems.append(f"the run did not end stopped: {str(final)[:200]}")
    if stop_seconds > 5:
        problems.append(f"the run took {stop_seconds:.1f} s to stop")
    use = str(client.predict(api_name="/finetune_use"))
    forget = str(client.predict(api_name="/finetune_forget"))
    if "now use your fine-tuned" not in use or "pretrained models again" not in forget:
        problems.append(f"Use / Forget after the race: {use[:120]!r} / {forget[:120]!r}")
    return Reply(not problems, "; ".join(problems), answers, slowest)


def disconnect_frees_the_device(url: str, wait_s: float = 30.0) -> tuple[bool, float, str]:
    """A visitor closes the page while its long fine-tune trains (the browser's event stream is dropped); a
    second visitor's fine-tune must then get the device within ``wait_s`` s, long before the first run
    (~60,000 images) could have finished by itself. Returns (freed, seconds after the disconnect, detail)."""
    import uuid

    import httpx

    from benchmarks.loadtest import rawhttp

    base = url.rstrip("/")
    session = uuid.uuid4().hex[:12]
    fn_index = rawhttp.dependency_id(url, "finetune")
    with httpx.Client(timeout=rawhttp.TIMEOUT) as h:
        data = [*LONG, None]  # the browser sends the session store (a gr.State) as null
        h.post(f"{base}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                      "event_data": None, "trigger_id": None}).raise_for_status()
        t0, training = time.perf_counter(), False
        with h.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                training = '"training"' in line
                if training or "process_completed" in line or time.perf_counter() - t0 > 120:
                    break  # leaving the with-block drops the connection: the visitor is gone
    if not training:
        return False, 0.0, f"the first run never trained: {line[:300]}"
    t_gone = time.perf_counter()
    other = Client(url, verbose=False)
    second = other.submit(*LONG, api_name="/finetune")
    phase = "?"
    try:
        while time.perf_counter() - t_gone < wait_s:
            outs = second.outputs()
            metrics = outs[-1][-1] if outs and isinstance(outs[-1][-1], dict) else {}
            phase = metrics.get("phase", phase)
            if phase not in ("?", "waiting"):
                return phase != "error", time.perf_counter() - t_gone, f"second run: {str(metrics)[:160]}"
            time.sleep(0.2)
        return False, time.perf_counter() - t_gone, f"the second run was still {phase!r} after {wait_s:.0f} s"
    finally:
        try:
            other.predict(api_name="/finetune_stop")
            second.result(timeout=60)
        except Exception:  # noqa: BLE001 - the app is checked for health afterwards anyway
            pass
