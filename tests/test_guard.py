"""The public-safety guard's rules as data (cnndemo.app.guard): routes, URL files, file references, the ledger."""

from __future__ import annotations

from cnndemo.app.guard import policy
from cnndemo.app.guard.ledger import Ledger, normal
from cnndemo.app.guard.middleware import file_refs
from cnndemo.app.guard.policy import Limits


def test_only_the_routes_the_app_uses_answer():
    for method, path in [("GET", "/"), ("GET", "/config"), ("HEAD", "/"), ("GET", "/gradio_api/info"),
                         ("POST", "/gradio_api/queue/join"), ("GET", "/gradio_api/queue/data"),
                         ("POST", "/gradio_api/call/classify"), ("GET", "/gradio_api/call/classify/abc123"),
                         ("POST", "/gradio_api/upload"), ("POST", "/gradio_api/cancel"),
                         ("GET", "/gradio_api/file=/tmp/gradio/ab/x.png"), ("GET", "/assets/index-1.js"),
                         ("GET", "/gradio_api/heartbeat/s1")]:
        assert policy.allowed(method, path), (method, path)
    for method, path in [("GET", "/gradio_api/deep_link"), ("POST", "/gradio_api/process_recording"),
                         ("GET", "/gradio_api/proxy=http://x"), ("POST", "/gradio_api/stream/e1"),
                         ("GET", "/gradio_api/vibe-code"), ("GET", "/monitoring"), ("POST", "/gradio_api/upload/x"),
                         ("GET", "/gradio_api/run-history/buckets"), ("POST", "/gradio_api/component_server"),
                         ("DELETE", "/"), ("POST", "/config"), ("GET", "/gradio_api/mcp/sse")]:
        assert not policy.allowed(method, path), (method, path)


def test_url_files_are_recognised_however_written():
    for path in ["/gradio_api/file=http://a/b.png", "/gradio_api/file=HTTPS://a", "/gradio_api/file=https%3A//a",
                 "/gradio_api/file=//evil/x"]:
        assert policy.is_url_file(path), path
    assert not policy.is_url_file("/gradio_api/file=/tmp/gradio/ab/x.png")


def test_every_file_reference_of_an_event_is_found():
    data = ["x", {"path": "/a.png", "meta": {"_type": "gradio.FileData"}}, None,
            {"background": None, "layers": [{"path": "/b.png"}], "composite": {"url": "http://c"}},
            [[{"path": None, "url": None}]], 3.5]
    assert list(file_refs(data)) == ["/a.png", "/b.png", "http://c"]
    deep = {"path": "/d"}
    for _ in range(40):
        deep = [deep]
    assert "<too deep>" in list(file_refs(deep))


def test_the_ledger_remembers_whose_files_and_bounds_budgets():
    now = [0.0]
    ledger = Ledger(Limits(sessions_per_window=2, upload_mb_per_hour=1, owned_paths=2), clock=lambda: now[0])
    ledger.give("ip:a", ["/tmp/gradio/1/x.png", "/tmp/gradio/2/y.png", "relative/z.png", "/tmp/../etc/passwd"])
    assert ledger.owns("ip:a", "/tmp/gradio/1/x.png") and not ledger.owns("ip:b", "/tmp/gradio/1/x.png")
    assert not ledger.owns("ip:a", "relative/z.png") and normal("/tmp/../etc/passwd") is None
    ledger.give("ip:a", ["/tmp/gradio/3/w.png"])  # at most 2 remembered: the oldest goes
    assert not ledger.owns("ip:a", "/tmp/gradio/1/x.png") and ledger.owns("ip:a", "/tmp/gradio/3/w.png")
    now[0] = 4000.0
    assert not ledger.owns("ip:a", "/tmp/gradio/3/w.png"), "forgotten after an hour, with Gradio's cache"
    assert ledger.upload_room("ip:a") == 1 << 20
    ledger.uploaded("ip:a", 900_000)
    assert ledger.upload_room("ip:a") < 200_000
    assert ledger.admit("ip:a", "s1") and ledger.admit("ip:a", "s1") and ledger.admit("ip:a", None)
    assert not ledger.admit("ip:a", "s2") and ledger.admit("ip:b", "s2"), "2 new sessions per window, per visitor"
    now[0] += 601
    assert ledger.admit("ip:a", "s3")


def test_messages_are_one_short_line():
    assert policy.short("a\nb   c") == "a b c"
    assert len(policy.short("x" * 10_000)) == policy.MAX_MESSAGE
