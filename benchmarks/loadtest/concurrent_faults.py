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
