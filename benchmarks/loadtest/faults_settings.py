"""Issue #18's settings faults: every numeric and string setting of every endpoint, sent a bad value over raw HTTP.

For each endpoint the table :data:`ENDPOINTS` lists its arguments in order (a valid JSON value for each) and which of
them are settings; each setting gets one case per bad-value class (NaN, +-Infinity, 1e308, -1, 2.5 for whole numbers;
"", a lone surrogate and NUL for strings). The bodies are raw JSON text, so NaN, Infinity and "\\ud800" reach the app
as a hostile client sends them. A clear answer is one line of at most 300 characters that names the setting, before
any work (the catalogue's time limit). ``faults.py`` appends :data:`FAULTS` to its ``CATALOGUE`` (group "settings").
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.faults import DIGIT, Ctx, Fault
from benchmarks.loadtest.rawhttp import Reply, file_data

IMAGE, FILES = "@image", "@files"  # placeholders for an uploaded digit (one file, a list of one file)

# Bad values as JSON text, by class; whole-number settings also get a fraction.
NUMBER_BAD = {"nan": "NaN", "infinity": "Infinity", "minus_infinity": "-Infinity", "huge_1e308": "1e308",
              "minus_1": "-1"}
WHOLE_BAD = {**NUMBER_BAD, "fraction_2_5": "2.5"}
STRING_BAD = {"empty": '""', "lone_surrogate": '"\\ud800"', "nul": '"a\\u0000b"'}
NAME_BAD = {k: v for k, v in STRING_BAD.items() if k != "empty"}  # names where "" means the default

# kind of a setting -> its bad values
KINDS = {"whole": WHOLE_BAD, "number": NUMBER_BAD, "string": STRING_BAD, "name": NAME_BAD}

# api -> [(argument, valid JSON value, kind or None for an argument that is not a setting under test)]
ENDPOINTS: dict[str, list[tuple[str, str, str | None]]] = {
    "classify": [("image", IMAGE, None), ("arch", '"residual_net"', "string"), ("dataset", '"mnist"', "string")],
    "feature_maps": [("image", IMAGE, None), ("arch", '"vgg11"', "string"), ("dataset", '"mnist"', "string"),
                     ("layer", '""', "name")],
    "inception_branches": [("image", IMAGE, None), ("arch", '"googlenet"', "string"), ("dataset", '"mnist"', "string"),
                           ("module", '""', "name")],
    "residual_blocks": [("image", IMAGE, None), ("arch", '"resnet18"', "string"), ("dataset", '"mnist"', "string")],
    "compare": [("image", IMAGE, None), ("dataset", '"mnist"', "string")],
    "saliency": [("image", IMAGE, None), ("arch", '"vgg11"', "string"), ("dataset", '"mnist"', "string"),
                 ("method", '"gradcam"', "string"), ("target", '""', "name"), ("layer", '""', "name")],
    "receptive_field": [("image", IMAGE, None), ("arch", '"vgg11"', "string"), ("dataset", '"mnist"', "string"),
                        ("layer", '""', "name"), ("row", "0", "whole"), ("col", "0", "whole")],
    "misclassified": [("arch", '"vgg11"', "string"), ("dataset", '"mnist"', "string"), ("page", "1", "whole")],
    "bottleneck": [("arch", '"googlenet"', "string"), ("module", '""', "name")],
    "finetune": [("arch", '"residual_net"', "string"), ("dataset", '"mnist"', "string"),
                 ("start", '"scratch"', "string"), ("epochs", "1", "whole"), ("lr", "0.003", "number"),
                 ("batch_size", "64", "whole"), ("optimizer", '"adam"', "string"), ("subset", "1000", "whole"),
                 ("augment", "false", None), ("freeze", "false", None)],
    "gradient_flow": [("depth", "20", "whole"), ("width", "8", "whole"), ("steps", "200", "whole"),
                      ("lr", "0.01", "number")],
    "teach": [("images", FILES, None), ("labels", r'"[\"7\"]"', "string"), ("arch", '"residual_net"', "string")],
}

_UPLOADED: dict[str, str] = {}  # app url -> the server path of the digit uploaded there


def _uploaded(ctx: Ctx) -> str:
    if ctx.url not in _UPLOADED:
        _UPLOADED[ctx.url] = rawhttp.upload(ctx.url, "d.png", Path(DIGIT).read_bytes()).json()[0]
    return _UPLOADED[ctx.url]


def arguments(ctx: Ctx, api: str, setting: str, bad: str) -> list[str]:
    """``api``'s arguments as JSON texts: ``setting`` set to the JSON text ``bad``, every other argument valid."""
    image = json.dumps(file_data(_uploaded(ctx))) if any(v in (IMAGE, FILES) for _, v, _ in ENDPOINTS[api]) else ""
    return [bad if name == setting else image if value == IMAGE else f"[{image}]" if value == FILES else value
            for name, value, _ in ENDPOINTS[api]]


def queue_join(base: str, api: str, values: list[str]) -> Reply:
    """Run ``api`` the browser's way (``queue/join`` + ``queue/data``) with ``values``, its arguments as raw JSON
    texts (so NaN and lone surrogates go as they are; the session's states follow as nulls, as the browser sends
    them); a stream cut short or an ``unexpected_error`` is an error with its message."""
    dep = rawhttp.dependency(base, api)
    session = uuid.uuid4().hex[:12]
    data = ",".join(values + ["null"] * (len(dep["inputs"]) - len(values)))
    content = (f'{{"data":[{data}],"fn_index":{dep["id"]},"session_hash":"{session}",'
               '"event_data":null,"trigger_id":null}').encode()
    t0 = time.perf_counter()
    message = "the event stream ended without a result"
    with httpx.Client(timeout=rawhttp.TIMEOUT) as h:
        r = h.post(f"{base}/gradio_api/queue/join", content=content, headers={"content-type": "application/json"})
        if r.status_code != 200:
            return Reply(False, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)
        try:
            with h.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
                for line in stream.iter_lines():
                    msg = json.loads(line[5:]) if line.startswith("data:") else {}
                    if msg.get("msg") == "unexpected_error":
                        message = str(msg.get("message"))
                    if msg.get("msg") == "process_completed":
                        output = msg.get("output") or {}
                        if msg.get("success"):
                            return Reply(True, "", output.get("data"), time.perf_counter() - t0)
                        return Reply(False, str(output.get("error")), output, time.perf_counter() - t0)
        except httpx.HTTPError as exc:
            message += f" ({type(exc).__name__})"
    return Reply(False, message, None, time.perf_counter() - t0)


def send(api: str, setting: str, bad: str, browser: bool = False) -> Callable[[Ctx], Reply]:
    """Send the bad value (over ``/call``, or the browser's queue when ``browser``); a streaming endpoint's last
    update with phase "error" counts as its message."""

    def run(ctx: Ctx) -> Reply:
        values = arguments(ctx, api, setting, bad)
        if browser:
            reply = queue_join(ctx.url.rstrip("/"), api, values)
        else:
            reply = rawhttp.call(ctx.url, api, ('{"data":[' + ",".join(values) + "]}").encode())
        last = reply.value[-1] if reply.ok and isinstance(reply.value, list) and reply.value else None
        if isinstance(last, dict) and last.get("phase") == "error":
            return Reply(False, str(last.get("message")), last, reply.seconds)
        if browser and reply.ok and isinstance(reply.value, list) and isinstance(reply.value[-1], dict):
            last = reply.value[-1]  # the browser's queue sends the outputs of the one update that came last
            if last.get("phase") == "error":
                return Reply(False, str(last.get("message")), last, reply.seconds)
        return reply

    return run


def names_setting(setting: str) -> str:
    """A regex for a clear message about ``setting``: one line of 1 to 300 characters, with no lone surrogate
    (valid UTF-8), that names it."""
    return r"\A(?=[^\n\ud800-\udfff]{1,300}\Z).*\b" + setting + r"\b"


FAULTS: list[Fault] = [
    Fault(f"settings_{api}_{setting}_{label}", "settings", send(api, setting, bad, browser=label == "lone_surrogate"),
          names_setting(setting))
    for api, arguments in ENDPOINTS.items()
    for setting, _value, kind in arguments if kind is not None
    for label, bad in KINDS[kind].items()
]
