"""Issue 18's fault cases for the live canvas, over HTTP: the payload's size whatever its JSON type, short
messages, and the per-session seq that must never go backwards when two drawings are answered at once.

``faults.py`` appends :data:`FAULTS` to its ``CATALOGUE``, so ``tests/test_public.py`` runs them against the app
(import ``faults`` first: this module imports from it).
"""

from __future__ import annotations

import json
import time

from benchmarks.loadtest.browser_session import BrowserSession
from benchmarks.loadtest.faults import Ctx, Fault, _payload, drawing
from benchmarks.loadtest.rawhttp import Reply

SHORT = r"^(?=.{1,300}$)"  # the whole message is one line of at most 300 characters
HEADER = {"v": 1, "seq": 1, "final": True, "w": 112, "h": 112, "x": 0, "y": 0, "cw": 0, "ch": 0, "alpha": ""}
RACE_ROUNDS = 12  # on main 1 round in 3 moved the seq back: 12 rounds all pass by chance with p = 0.008


def _answered(reply: dict, canvas_index: int) -> bool:
    """Whether a draw event's answer set any output besides the canvas (a skipped drawing sets only its ack)."""
    data = (reply.get("output") or {}).get("data") or []
    return any(v is not None and not (isinstance(v, dict) and set(v) <= {"__type__"})
               for i, v in enumerate(data) if i != canvas_index)


def canvas_seq_never_goes_back(ctx: Ctx) -> Reply:
    """Rounds of one fresh session each: drawings 2 and 1 sent at once, then drawing 2 again. If the session's
    newest answered seq went back to 1, the repeat of drawing 2 is answered again; it must be skipped. (The app may
    refuse drawing 1 at once, as older than the one waiting: one canvas event waits per session, the newest.)"""
    t0, backwards = time.perf_counter(), 0
    for _ in range(RACE_ROUNDS):
        s = BrowserSession(ctx.url)
        try:
            dep = next(d for d in s.dependencies if d.get("api_name") == "draw")
            canvas = dep["outputs"].index(dep["inputs"][0])
            base = [s.default(i) for i in dep["inputs"]]
            newer = s.join(dep, [_payload(seq=2), *base[1:]])
            older = s.http.post(f"{s.url}/gradio_api/queue/join", json={
                "data": [_payload(seq=1), *base[1:]], "fn_index": dep["id"], "session_hash": s.hash,
                "event_data": None, "trigger_id": None})
            if older.status_code not in (200, 409):  # 409: refused as older than the drawing already waiting
                return Reply(False, f"drawing 1 got HTTP {older.status_code}: {older.text[:200]}", None,
                             time.perf_counter() - t0)
            joined = [newer] + ([older.json()["event_id"]] if older.status_code == 200 else [])
            raced = s.run_together([], timeout=30, wait_for=joined)
            if not all(m.get("success") for m in raced):
                return Reply(False, f"a drawing was refused: {str(raced)[:300]}", None, time.perf_counter() - t0)
            probe = s.run(dep, [_payload(seq=2), *base[1:]], timeout=30)
            backwards += _answered(probe, canvas)
        finally:
            s.close()
    seconds = (time.perf_counter() - t0) / RACE_ROUNDS  # judged per round: each is a few small events
    if backwards:
        return Reply(False, f"the newest answered drawing went back in {backwards} of {RACE_ROUNDS} rounds",
                     None, seconds)
    return Reply(True, "", None, seconds)


FAULTS: list[Fault] = [
    Fault("canvas_object_payload_of_550_kb", "payloads", drawing(lambda: {**HEADER, "w": "x" * 550_000}),
          SHORT + r".*too large"),
    Fault("canvas_list_payload_of_200_kb", "payloads", drawing(lambda: [HEADER] * 2000), SHORT + r".*too large"),
    Fault("canvas_nested_object_payload", "payloads", drawing(lambda: {**HEADER, "seq": {"a": ["y" * 60_000] * 2}}),
          SHORT + r".*too large"),
    Fault("canvas_long_bad_value_is_not_echoed", "payloads",
          drawing(lambda: json.dumps({**HEADER, "w": "x" * 5000})), SHORT + r".*'w' must be an integer(?!.*xxxxxxxxxx)"),
    Fault("canvas_many_unknown_keys_are_not_listed", "payloads",
          drawing(lambda: {**HEADER, **{f"k{i}_{'z' * 40}": 1 for i in range(100)}}), SHORT + r".*unknown keys"),
    Fault("canvas_seq_never_goes_back_when_two_drawings_race", "concurrency", canvas_seq_never_goes_back, None),
]
