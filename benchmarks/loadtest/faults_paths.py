"""Fault cases of issue 18, "no server paths" (group ``paths``), over HTTP against the real app.

``/config``, ``/gradio_api/info`` and an example click name no path of the server
(:func:`benchmarks.loadtest.paths_check.server_paths`); a bad example index sent to the shelf's click event (out
of range, negative, NaN, Infinity, a fraction, a string, a list) gets one clear line. Import it through
:mod:`benchmarks.loadtest.faults` (its last lines add ``FAULTS`` to the catalogue; imported first, the cycle fails).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from benchmarks.loadtest import rawhttp
from benchmarks.loadtest.faults import Ctx, Fault
from benchmarks.loadtest.paths_check import join_raw, server_paths, shelf_click
from benchmarks.loadtest.rawhttp import Reply

BAD_INDEX = r"example index must be a whole number from 0 to \d+"


def click_example(index: str) -> Callable[[Ctx], Reply]:
    """Send ``index`` (JSON, as written) to the MNIST shelf's click event, the browser's way; an answer that names
    a server path is a failure."""

    def send(ctx: Ctx) -> Reply:
        reply = join_raw(ctx.url, shelf_click(ctx.url)["id"], f"[{index}]")
        paths = server_paths(json.dumps(reply.value)) if reply.ok else []
        if paths:
            return Reply(False, f"the answer names {len(set(paths))} server paths, e.g. {paths[0]}", reply.value,
                         reply.seconds)
        return reply

    return send


def no_paths_in(*routes: str) -> Callable[[Ctx], Reply]:
    """GET each route; an answer only when none names a server path."""

    def send(ctx: Ctx) -> Reply:
        t0, found = time.perf_counter(), []
        for route in routes:
            found += server_paths(httpx.get(f"{ctx.url.rstrip('/')}/{route}", timeout=rawhttp.TIMEOUT).text)
        if found:
            return Reply(False, f"{len(found)} server paths ({len(set(found))} distinct), e.g. {found[0]}", found,
                         time.perf_counter() - t0)
        return Reply(True, "", None, time.perf_counter() - t0)

    return send


FAULTS: list[Fault] = [
    Fault("config_and_api_info_name_no_server_path", "paths", no_paths_in("config", "gradio_api/info"), None),
    Fault("example_click_names_no_server_path", "paths", click_example("3"), None),
    Fault("example_index_out_of_range", "paths", click_example("10000"), BAD_INDEX),
    Fault("example_index_negative", "paths", click_example("-1"), BAD_INDEX),
    Fault("example_index_nan", "paths", click_example("NaN"), BAD_INDEX),
    Fault("example_index_infinity", "paths", click_example("Infinity"), BAD_INDEX),
    Fault("example_index_fraction", "paths", click_example("2.5"), BAD_INDEX),
    Fault("example_index_string", "paths", click_example('"3"'), BAD_INDEX),
    Fault("example_index_path", "paths", click_example('"/etc/passwd"'), BAD_INDEX),
    Fault("example_index_list", "paths", click_example("[3]"), BAD_INDEX),
    Fault("example_index_none", "paths", click_example("null"), BAD_INDEX),
]
