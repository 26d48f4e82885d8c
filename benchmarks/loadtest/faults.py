"""The fault catalogue of issue #9: bad input of every kind, as data, and the check of the answer.

Each :class:`Fault` says how to send it (``send(ctx) -> Reply``) and what a clear answer looks like:
``expect`` is a regex the error message must match (``None``: a normal answer is expected, e.g.
a valid 16-bit PNG). A clear message is never the generic "raised an exception but has not enabled
verbose error reporting", never empty, never a traceback, and comes within ``LIMIT_S`` seconds.
``known_failing_today`` marks cases the app gets wrong (``today`` says what it answers; none is marked
now); ``tests/test_public.py`` xfails exactly those, strictly, so a fixed one shows up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gradio_client import Client, handle_file

from benchmarks.loadtest import badfiles, rawhttp
from benchmarks.loadtest.app_control import EXAMPLES
from benchmarks.loadtest.concurrent_faults import racing_stop_use_forget, stop_use_forget_fresh
from benchmarks.loadtest.rawhttp import Reply, file_data

LIMIT_S = 2.0  # "a clear message within a second or two"
GENERIC = re.compile(r"not enabled verbose error reporting|Traceback \(most recent|^\s*(Error|None)?\s*$|"
                     r"Internal Server Error", re.I)
DIGIT = str(EXAMPLES / "mnist" / "7_7_0000.png")
FT = ("residual_net", "mnist", "scratch", 1, 3e-3, 64, "adam", 1000, False, False)  # a valid /finetune call


@dataclass
class Ctx:
    """Where to send: the app's ``url``, a ``folder`` for bad files, one shared ``client``."""

    url: str
    folder: Path
    client: Client


@dataclass(frozen=True)
class Fault:
    name: str
    group: str  # files, payloads, arguments, names, finetune, concurrency
    send: Callable[[Ctx], Reply]
    expect: str | None  # regex of the clear message; None = a normal answer is expected
    known_failing_today: bool = False
    today: str = ""  # what today's app answers, where it fails


def predict(api: str, *args) -> Callable[[Ctx], Reply]:
    """Send ``args`` to ``api`` with gradio_client; a ``str`` starting with ``file:`` is a bad file to make."""

    def send(ctx: Ctx) -> Reply:
        real = [handle_file(str(badfiles.make(a[5:], ctx.folder))) if isinstance(a, str) and a.startswith("file:")
                else handle_file(a) if a == DIGIT else a for a in args]
        t0 = time.perf_counter()
        try:
            value = ctx.client.predict(*real, api_name=api)
        except Exception as exc:  # noqa: BLE001 - the message is what is judged
            return Reply(False, str(exc) if type(exc).__name__ == "AppError" else f"{type(exc).__name__}: {exc}",
                         None, time.perf_counter() - t0)
        return Reply(True, "", value, time.perf_counter() - t0)

    return send


def classify_file(name: str) -> Callable[[Ctx], Reply]:
    return predict("/classify", f"file:{name}", "residual_net", "mnist")


def raw(api: str, body: bytes | dict | Callable[[Ctx], dict]) -> Callable[[Ctx], Reply]:
    return lambda ctx: rawhttp.call(ctx.url, api, body(ctx) if callable(body) else body)


def with_file(path: str, url: str | None = None) -> Callable[[Ctx], dict]:
    return lambda ctx: {"data": [file_data(path, url), "residual_net", "mnist"]}


def uploaded(ctx: Ctx) -> str:
    return rawhttp.upload(ctx.url, "d.png", Path(DIGIT).read_bytes()).json()[0]


def oversize_upload(ctx: Ctx) -> Reply:
    t0 = time.perf_counter()
    r = rawhttp.upload(ctx.url, "huge.png", badfiles.make("oversize", ctx.folder).read_bytes())
    return Reply(r.status_code == 200, f"HTTP {r.status_code}: {r.text[:300]}", None, time.perf_counter() - t0)


def drawing(payload: str | Callable[[], str]) -> Callable[[Ctx], Reply]:
    """A crafted payload for the live canvas's event (``draw``), the browser's way; the other inputs are left to
    the session (states) or empty: the payload is checked before anything else is read."""

    def send(ctx: Ctx) -> Reply:
        dep = rawhttp.dependency(ctx.url, "draw")
        value = payload() if callable(payload) else payload
        return rawhttp.queue_join(ctx.url, dep["id"], [value] + [None] * (len(dep["inputs"]) - 1))

    return send


def _payload(**changes) -> str:
    """A well-formed 8 x 8 crop payload with ``changes`` applied."""
    import base64
    import json

    body = {"v": 1, "seq": 1, "final": True, "w": 112, "h": 112, "x": 50, "y": 50, "cw": 8, "ch": 8,
            "alpha": base64.b64encode(bytes(64)).decode()}
    return json.dumps({**body, **changes})


def finetune(*changes: tuple[int, object]) -> Callable[[Ctx], Reply]:
    """``/finetune`` with some arguments replaced; an error ends the stream (phase "error") or raises."""

    def send(ctx: Ctx) -> Reply:
        args = list(FT)
        for i, v in changes:
            args[i] = v
        t0 = time.perf_counter()
        try:
            outputs = ctx.client.submit(*args, api_name="/finetune").result(timeout=60)
        except Exception as exc:  # noqa: BLE001
            return Reply(False, str(exc), None, time.perf_counter() - t0)
        metrics = outputs[-1] if isinstance(outputs[-1], dict) else {}
        ok = metrics.get("phase") == "done"
        return Reply(ok, "" if ok else str(metrics.get("message", metrics)), metrics, time.perf_counter() - t0)

    return send


def raw_finetune(body: bytes) -> Callable[[Ctx], Reply]:
    """``/finetune`` over raw HTTP (gradio_client refuses to send NaN); a phase-"error" update counts as the message."""

    def send(ctx: Ctx) -> Reply:
        reply = rawhttp.call(ctx.url, "finetune", body)
        if reply.ok and isinstance(reply.value, list) and isinstance(reply.value[-1], dict):
            metrics = reply.value[-1]
            if metrics.get("phase") == "error":
                return Reply(False, str(metrics.get("message")), metrics, reply.seconds)
        return reply

    return send


def _ft_body(**kw) -> bytes:
    args = {"arch": '"residual_net"', "dataset": '"mnist"', "start": '"scratch"', "epochs": "1", "lr": "0.003",
            "batch": "64", "opt": '"adam"', "subset": "1000", "aug": "false", "freeze": "false", **kw}
    return ('{"data":[' + ",".join(args.values()) + "]}").encode()


NOT_IMAGE = r"not an image|cannot read|can't read|unsupported"
CATALOGUE: list[Fault] = [
    # ---------------------------------------------------------------- files (/classify via gradio_client)
    Fault("empty_file", "files", classify_file("empty"), r"empty"),
    Fault("truncated_png", "files", classify_file("truncated_png"), NOT_IMAGE + "|truncated"),
    Fault("text_renamed_png", "files", classify_file("text_as_png"), NOT_IMAGE),
    Fault("decompression_bomb_png_20000x20000", "files", classify_file("bomb_png"), r"too large"),
    Fault("decompression_bomb_gif_65535x65535", "files", classify_file("bomb_gif"), r"too large"),
    Fault("zero_size_png", "files", classify_file("zero_size_png"), NOT_IMAGE + r"|empty|0 pixels"),
    Fault("one_by_one_png", "files", classify_file("one_by_one"), r"blank|too small"),
    Fault("png_bad_crc", "files", classify_file("bad_crc_png"), NOT_IMAGE),
    Fault("truncated_jpeg", "files", classify_file("truncated_jpeg"), NOT_IMAGE + "|truncated"),
    Fault("eps_file", "files", classify_file("eps"), NOT_IMAGE),
    Fault("pdf_file", "files", classify_file("pdf"), NOT_IMAGE),
    Fault("svg_file", "files", classify_file("svg"), NOT_IMAGE),
    Fault("png_16_bit_is_classified", "files", classify_file("sixteen_bit"), None),
    Fault("animated_gif_is_classified", "files", classify_file("animated_gif"), None),
    Fault("corrupt_exif_jpeg_is_classified", "files", classify_file("corrupt_exif"), None),
    Fault("jpeg_named_png_is_classified", "files", classify_file("jpeg_named_png"), None),
    Fault("cmyk_jpeg_is_classified", "files", classify_file("cmyk_jpeg"), None),
    Fault("oversize_file_11MB_upload", "files", oversize_upload, r"10485760|10 MB|too large|exceeded"),
    # ---------------------------------------------------------------- payloads (raw HTTP)
    Fault("malformed_json", "payloads", raw("classify", b'{"data": [not json'), r"JSON"),
    Fault("data_not_a_list", "payloads", raw("classify", {"data": "x"}), r"list"),
    Fault("data_missing", "payloads", raw("classify", {"nodata": 1}), r"required|missing"),
    Fault("too_few_arguments", "payloads", raw("classify", lambda ctx: {"data": [file_data(uploaded(ctx))]}),
          r"argument|input|expected|needed"),
    Fault("unknown_endpoint", "payloads", raw("no_such_endpoint", {"data": []}), r"not found|no such|unknown|endpoint"),
    Fault("filedata_http_url", "payloads", raw("classify", with_file("http://127.0.0.1:9/d.png")),
          r"url|download|not allowed|cannot be accessed|uploaded"),
    Fault("filedata_https_url", "payloads", raw("classify", with_file("https://127.0.0.1:9/d.png",
                                                                      "https://127.0.0.1:9/d.png")),
          r"url|download|not allowed|cannot be accessed|uploaded"),
    Fault("filedata_etc_passwd", "payloads", raw("classify", with_file("/etc/passwd")),
          r"cannot be accessed|not allowed|upload"),
    Fault("filedata_path_traversal", "payloads", raw("classify", with_file("/tmp/gradio/../../etc/passwd")),
          r"cannot be accessed|not allowed|upload"),
    Fault("filedata_repo_checkpoint", "payloads",
          raw("classify", with_file(str(EXAMPLES.parent / "checkpoints" / "vgg11_mnist.safetensors"))),
          r"cannot be accessed|not allowed|upload"),
    Fault("image_as_plain_string_path", "payloads", raw("classify", {"data": ["/etc/passwd", "residual_net", "mnist"]}),
          r"file|image|cannot be accessed"),
    Fault("image_as_number", "payloads", raw("classify", {"data": [42, "residual_net", "mnist"]}),
          r"file|image"),
    Fault("image_as_nan", "payloads", raw("classify", b'{"data": [NaN, "residual_net", "mnist"]}'),
          r"file|image"),
    Fault("canvas_payload_of_1_mb", "payloads", drawing("x" * 1_000_000), r"too large"),
    Fault("canvas_payload_is_a_url", "payloads", drawing("http://127.0.0.1:9/drawing.png"), r"not JSON"),
    Fault("canvas_4096_pixels_wide", "payloads", drawing(lambda: _payload(w=4096)), r"'w' must be an integer in \[1, 256\]"),
    Fault("canvas_crop_bigger_than_its_data", "payloads", drawing(lambda: _payload(cw=200, ch=200)),
          r"crop|base64 characters|must be an integer"),
    Fault("canvas_unknown_keys", "payloads", drawing(lambda: _payload(layers=[1] * 300)), r"unknown keys"),
    # ---------------------------------------------------------------- arguments (gradio_client)
    Fault("unknown_arch", "arguments", predict("/classify", DIGIT, "alexnet", "mnist"), r"alexnet.*vgg11"),
    Fault("unknown_dataset", "arguments", predict("/classify", DIGIT, "vgg11", "cifar10"), r"cifar10.*mnist"),
    Fault("arch_none", "arguments", predict("/classify", DIGIT, None, "mnist"), r"vgg11|choose|unknown"),
    Fault("dataset_none", "arguments", predict("/classify", DIGIT, "vgg11", None), r"fashion_mnist|choose|unknown"),
    Fault("image_none", "arguments", predict("/classify", None, "vgg11", "mnist"), r"no image|upload"),
    Fault("arch_wrong_type_int", "arguments", predict("/classify", DIGIT, 123, "mnist"), r"123.*vgg11"),
    Fault("dataset_wrong_type_list", "arguments", predict("/classify", DIGIT, "vgg11", ["mnist"]),
          r"dataset|mnist"),
    Fault("image_wrong_type_int", "arguments", predict("/classify", 42, "vgg11", "mnist"), r"file|image"),
    Fault("residual_blocks_of_vgg", "arguments", predict("/residual_blocks", DIGIT, "vgg11", "mnist"), r"no residual"),
    Fault("inception_branches_of_resnet", "arguments", predict("/inception_branches", DIGIT, "resnet18", "mnist", ""),
          r"no Inception"),
    # ---------------------------------------------------------------- names (must be an error, not a fallback)
    Fault("unknown_layer", "names", predict("/feature_maps", DIGIT, "vgg11", "mnist", "features.block99"),
          r"layer"),
    Fault("layer_not_visualisable_prep", "names", predict("/feature_maps", DIGIT, "vgg11", "mnist", "prep"),
          r"layer"),
    Fault("layer_path_traversal", "names", predict("/feature_maps", DIGIT, "vgg11", "mnist", "../../etc/passwd"),
          r"layer"),
    Fault("layer_wrong_type_int", "names", predict("/feature_maps", DIGIT, "vgg11", "mnist", 5),
          r"layer"),
    Fault("unknown_inception_module", "names",
          predict("/inception_branches", DIGIT, "googlenet", "mnist", "inception.inception9z"),
          r"module"),
    Fault("inception_module_is_a_conv", "names", predict("/inception_branches", DIGIT, "inception_net", "mnist", "conv1"),
          r"module"),
    # ---------------------------------------------------------------- fine-tune settings
    Fault("finetune_epochs_1000", "finetune", finetune((3, 1000)), r"epoch|maximum|10"),
    Fault("finetune_subset_1e9", "finetune", finetune((7, 10**9)), r"subset|maximum|55000"),
    Fault("finetune_lr_negative", "finetune", finetune((4, -1)), r"lr|learning rate|minimum"),
    Fault("finetune_batch_0", "finetune", finetune((5, 0)), r"batch|minimum|16"),
    Fault("finetune_lr_nan", "finetune", raw_finetune(_ft_body(lr="NaN")), r"lr|learning rate"),
    Fault("finetune_epochs_nan", "finetune", raw_finetune(_ft_body(epochs="NaN")), r"epoch"),
    Fault("finetune_epochs_string", "finetune", finetune((3, "two")), r"epoch|number"),
    Fault("finetune_unknown_arch", "finetune", finetune((0, "alexnet")), r"alexnet"),
    Fault("finetune_unknown_optimizer", "finetune", finetune((6, "rmsprop")), r"rmsprop"),
    Fault("finetune_unknown_start", "finetune", finetune((2, "imagenet")), r"imagenet"),
    Fault("finetune_dataset_none", "finetune", finetune((1, None)), r"dataset"),
    Fault("finetune_over_the_cpu_budget_10x55000", "finetune", finetune((3, 10), (7, 55000)), r"at most 60,000 images"),
    # ---------------------------------------------------------------- concurrency
    Fault("stop_use_forget_concurrently_while_training", "concurrency", racing_stop_use_forget, None),
    Fault("stop_use_forget_concurrently_fresh_session", "concurrency", stop_use_forget_fresh, None),
]


def judge(fault: Fault, reply: Reply, limit: float = LIMIT_S) -> str | None:
    """None when the reply is what ``fault`` asks for, else why not."""
    if reply.seconds > limit:
        return f"took {reply.seconds:.2f} s (limit {limit:g} s)"
    if fault.expect is None:
        return None if reply.ok else f"expected an answer, got an error: {reply.message[:300]!r}"
    if reply.ok:
        return f"expected an error matching /{fault.expect}/, got an answer: {str(reply.value)[:200]!r}"
    if GENERIC.search(reply.message or ""):
        return f"not a clear message: {reply.message[:300]!r}"
    if not re.search(fault.expect, reply.message, re.I):
        return f"message {reply.message[:300]!r} does not match /{fault.expect}/"
    return None


def run_fault(fault: Fault, ctx: Ctx) -> tuple[Reply, str | None]:
    reply = fault.send(ctx)
    return reply, judge(fault, reply)


def reference_answers(url: str, per_dataset: int = 4) -> dict[str, list]:
    """``/classify`` confidences of every architecture on a fixed set of examples (to compare bit for bit)."""
    client = Client(url, verbose=False)
    out = {}
    for dataset in ("mnist", "fashion_mnist"):
        for path in sorted((EXAMPLES / dataset).glob("*.png"))[::50 // per_dataset][:per_dataset]:
            for arch in ("vgg11", "googlenet", "resnet18", "inception_net", "residual_net"):
                result = client.predict(handle_file(str(path)), arch, dataset, api_name="/classify")
                out[f"{arch}/{dataset}/{path.name}"] = [(c["label"], c["confidence"]) for c in result["confidences"]]
    return out


from benchmarks.loadtest import faults_guard as _guard  # noqa: E402  (they build on the helpers above)
from benchmarks.loadtest import faults_paths as _paths  # noqa: E402
from benchmarks.loadtest import faults_races as _races  # noqa: E402
from benchmarks.loadtest import faults_settings as _settings  # noqa: E402

CATALOGUE += _guard.FAULTS
CATALOGUE += _settings.FAULTS
CATALOGUE += _paths.FAULTS
CATALOGUE += _races.FAULTS
