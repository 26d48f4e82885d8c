"""Issue #18's fault cases against the shared app: server files, request bounds, closed routes, long messages.

Each is a :class:`~benchmarks.loadtest.faults.Fault` sent over raw HTTP as a hostile visitor would. The per-visitor
budgets (sessions, upload bytes, runs behind spoofed headers) need an app with small budgets of its own:
:mod:`benchmarks.loadtest.visitor_faults` has those.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.faults import DIGIT, Ctx, Fault, drawing, raw, uploaded
from benchmarks.loadtest.paths_check import join_raw
from benchmarks.loadtest.rawhttp import Reply

NOT_YOURS = r"uploaded"  # the one line for every file the visitor was not given


def server_png(ctx: Ctx) -> str:
    """A real PNG on the server that the visitor never uploaded (as any file of the install would be)."""
    path = Path(ctx.folder) / "server-side-digit.png"
    path.write_bytes(Path(DIGIT).read_bytes())
    return str(path)


def without_meta(path: str) -> dict:
    """An image reference as Gradio's ImageData takes it: no ``meta`` field, so Gradio itself checks nothing."""
    return {"path": path}


def image_call(api: str, ref, *rest) -> callable:
    return raw(api, lambda ctx: {"data": [ref(ctx) if callable(ref) else ref, *rest]})


def same_line_for_every_path(ctx: Ctx) -> Reply:
    """A server PNG, a missing file and a big file get the same answer: no existence or size oracle."""
    big = Path(ctx.folder) / "big.bin"
    big.write_bytes(b"\0" * (12 << 20))
    t0 = time.perf_counter()
    messages = {p: rawhttp.call(ctx.url, "classify", {"data": [without_meta(p), "residual_net", "mnist"]}).message
                for p in (server_png(ctx), "/no/such/file.png", str(big))}
    distinct = set(messages.values())
    if len(distinct) == 1:
        return Reply(False, next(iter(distinct)), None, time.perf_counter() - t0)
    return Reply(True, "", f"different answers (an oracle): {messages}", time.perf_counter() - t0)


def page(ctx: Ctx) -> tuple[dict, dict]:
    """The app's ``/config`` and each component's value in it (what the page would send for it)."""
    config = httpx.get(ctx.url.rstrip("/") + "/config", timeout=30).json()
    return config, {c["id"]: c.get("props", {}).get("value") for c in config["components"]}


def upload_event_with(ref) -> callable:
    """The page's own upload event (queue/join, as the browser sends it) naming a file the visitor never had."""

    def send(ctx: Ctx) -> Reply:
        config, values = page(ctx)
        upload = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "upload")
        dep = next(d for d in config["dependencies"] if any(t[0] == upload for t in d["targets"])
                   and d["inputs"] and d["inputs"][0] == upload)
        data = [ref(ctx)] + [values.get(i) for i in dep["inputs"][1:]]
        return rawhttp.queue_join(ctx.url, dep["id"], data)

    return send


def big_body(nbytes: int, route: str = "queue/join") -> callable:
    def send(ctx: Ctx) -> Reply:
        body = b'{"data": ["' + b"x" * nbytes + b'"], "fn_index": 0, "session_hash": "big' + uuid.uuid4().hex[:8].encode() + b'"}'
        t0 = time.perf_counter()
        r = httpx.post(ctx.url.rstrip("/") + f"/gradio_api/{route}", content=body,
                       headers={"content-type": "application/json"}, timeout=60)
        return Reply(r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)

    return send


def many_files(n: int) -> callable:
    def send(ctx: Ctx) -> Reply:
        files = [("files", (f"f{i}.png", b"\x89PNG" + bytes(64), "image/png")) for i in range(n)]
        t0 = time.perf_counter()
        r = httpx.post(ctx.url.rstrip("/") + "/gradio_api/upload", files=files, timeout=60)
        return Reply(r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)

    return send


def route(method: str, path: str, **kw) -> callable:
    """A Gradio route the app does not use: anything but a 404 is a route left open."""

    def send(ctx: Ctx) -> Reply:
        t0 = time.perf_counter()
        r = httpx.request(method, ctx.url.rstrip("/") + path, timeout=30, **kw)
        return Reply(r.status_code != 404, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)

    return send


def long_message(send) -> callable:
    """The answer to ``send`` must be an error of one line of at most 300 characters."""

    def check(ctx: Ctx) -> Reply:
        reply = send(ctx)
        if reply.ok:
            return reply
        line = reply.message.split(": ", 1)[-1] if reply.message.startswith("HTTP ") else reply.message
        if len(line) > 300 or "\n" in line.strip():
            return Reply(True, "", f"a message of {len(line)} characters: {line[:120]!r}…", reply.seconds)
        return reply

    return check


def canvas_flood(ctx: Ctx, events: int = 30) -> Reply:
    """One session sends 30 canvas events at once without waiting: at most one is queued at a time, the newest wins,
    so only a few are computed (the browser's own rule, one in flight, now also the server's)."""
    config, values = page(ctx)
    dep = next(d for d in config["dependencies"] if d.get("api_name") == "draw")
    base, session = ctx.url.rstrip("/"), "flood" + uuid.uuid4().hex[:8]
    payload = lambda seq: json.dumps({"v": 1, "seq": seq, "final": True, "w": 112, "h": 112, "x": 50, "y": 50,  # noqa: E731
                                      "cw": 8, "ch": 8, "alpha": "/" * 86 + "=="})
    t0 = time.perf_counter()
    ids = []
    with httpx.Client(timeout=30) as h:
        for seq in range(1, events + 1):
            r = h.post(f"{base}/gradio_api/queue/join", json={"data": [payload(seq)] + [values.get(i) for i in dep["inputs"][1:]],
                                                             "fn_index": dep["id"], "session_hash": session})
            if r.status_code == 200:
                ids.append(r.json()["event_id"])
        computed, done = 0, set()
        with h.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    msg = json.loads(line[5:])
                    if msg.get("msg") == "process_completed":
                        done.add(msg.get("event_id"))
                        computed += bool((msg.get("output") or {}).get("data"))
                    if ids and ids[-1] in done:
                        break
    seconds = time.perf_counter() - t0
    if computed > 3:
        return Reply(True, "", f"{computed} of {len(ids)} queued canvas events of one session were computed", seconds)
    return Reply(False, f"{computed} of {len(ids)} computed: at most one queued per session (the newest)", None, seconds)


FAULTS: list[Fault] = [
    # ---------------------------------------------------------------- server files (image references without meta)
    Fault("server_png_without_meta_classify", "files_guard",
          image_call("classify", lambda ctx: without_meta(server_png(ctx)), "residual_net", "mnist"), NOT_YOURS),
    Fault("server_png_without_meta_feature_maps", "files_guard",
          image_call("feature_maps", lambda ctx: without_meta(server_png(ctx)), "vgg11", "mnist", "features.block1"),
          NOT_YOURS),
    Fault("server_png_without_meta_saliency", "files_guard",
          image_call("saliency", lambda ctx: without_meta(server_png(ctx)), "vgg11", "mnist", "gradcam", "", ""),
          NOT_YOURS),
    Fault("checkpoint_without_meta", "files_guard",
          image_call("classify", without_meta(str(Path(DIGIT).parents[2] / "checkpoints" / "vgg11_mnist.safetensors")),
                     "residual_net", "mnist"), NOT_YOURS),
    Fault("same_answer_for_existing_missing_and_big_paths", "files_guard", same_line_for_every_path, NOT_YOURS),
    Fault("page_upload_event_names_a_server_png", "files_guard",
          upload_event_with(lambda ctx: without_meta(server_png(ctx))), NOT_YOURS),
    Fault("canvas_sketch_layers_name_server_files", "files_guard",
          upload_event_with(lambda ctx: {"path": "/etc/hostname", "url": "http://127.0.0.1:9/x.png"}), NOT_YOURS),
    # ---------------------------------------------------------------- bounds, checked before any work
    Fault("queue_body_of_24_mb", "bounds", big_body(24 << 20), r"too large"),
    Fault("call_body_of_2_mb", "bounds", big_body(2 << 20, "call/classify"), r"too large"),
    Fault("upload_of_200_files_in_one_request", "bounds", many_files(200), r"at most 20 files"),
    Fault("canvas_flood_of_one_session", "bounds", canvas_flood, r"at most one queued"),
    Fault("error_message_of_a_100k_arch_name", "bounds",
          long_message(raw("classify", lambda ctx: {"data": [rawhttp.file_data(uploaded(ctx)), "a" * 100_000, "mnist"]})),
          r"."),
    Fault("canvas_error_message_stays_short", "bounds", long_message(drawing(lambda: {f"k{i}": "x" * 4 for i in range(6000)})),
          r"."),
    # ---------------------------------------------------------------- Gradio routes the app does not use
    Fault("route_deep_link", "routes", route("GET", "/gradio_api/deep_link?session_hash=x"), r"404"),
    Fault("route_process_recording", "routes", route("POST", "/gradio_api/process_recording",
                                                      files={"video": ("a.mp4", b"0", "video/mp4")}), r"404"),
    Fault("route_file_with_a_public_url", "routes", route("GET", "/gradio_api/file=http://127.0.0.1:9/x.png"), r"404"),
    Fault("route_proxy", "routes", route("GET", "/gradio_api/proxy=http://127.0.0.1:9/x"), r"404"),
    Fault("route_stream", "routes", route("POST", "/gradio_api/stream/x", json={}), r"404"),
    Fault("route_vibe_code", "routes", route("GET", "/gradio_api/vibe-code"), r"404"),
    Fault("route_monitoring", "routes", route("GET", "/monitoring"), r"404"),
    Fault("route_run_history", "routes", route("GET", "/gradio_api/run-history/buckets"), r"404"),
    Fault("route_component_server", "routes", route("POST", "/gradio_api/component_server",
                                                     json={"session_hash": "x", "component_id": 1, "fn_name": "x",
                                                           "data": None}), r"404"),
]


def private_setting(label: str, trigger: str, bad) -> callable:
    """The page's own event of the first component labelled ``label`` (its ``trigger``), sent the browser's way with
    ``bad`` as that component's value; the rest are the page's defaults. NaN and lone surrogates go as they are."""

    def send(ctx: Ctx) -> Reply:
        config, values = page(ctx)
        ids = [c["id"] for c in config["components"] if c.get("props", {}).get("label") == label]
        dep = next(d for d in config["dependencies"] for i in ids
                   if [i, trigger] in [list(t) for t in d["targets"]] and i in d["inputs"])
        target = next(i for i in ids if i in dep["inputs"])
        data = [bad if i == target else values.get(i) for i in dep["inputs"]]
        t0 = time.perf_counter()
        try:
            return join_raw(ctx.url, dep["id"], json.dumps(data))  # NaN and lone surrogates as they are
        except httpx.HTTPError as exc:  # e.g. the stream broken by a lone surrogate
            return Reply(False, f"{type(exc).__name__}: {exc}", None, time.perf_counter() - t0)

    return send


ONE_LINE = r"^(?!.*\n)(?!.*[\ud800-\udfff]).{1,300}$"
for _label, _trigger, _name in (("Layer", "input", "layer"), ("Dataset", "change", "dataset")):
    for _kind, _bad in (("nan", float("nan")), ("empty", ""), ("lone_surrogate", "\ud800"), ("nul", "a\x00b"),
                        ("number", 7), ("unknown", "features.block99")):
        FAULTS.append(Fault(f"private_{_name}_{_kind}", "settings", private_setting(_label, _trigger, _bad),
                            rf"(?=.*\b{_name}\b)" + ONE_LINE))
