"""How the page and its updates are served: Gradio's scripts compressed once (cnndemo.app.compressed_assets), the
app's texts rendered on the server (cnndemo.app.prose) instead of by gr.Markdown in the browser."""

from __future__ import annotations

import gzip
import re
import urllib.request
from pathlib import Path

import brotli
import gradio as gr
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from cnndemo.app import compressed_assets
from cnndemo.app.compressed_assets import CompressedAssets
from cnndemo.app.prose import Prose, to_html

FRONTEND = Path(gr.__file__).parent / "templates" / "frontend"


def _largest(pattern: str) -> Path:
    return max((FRONTEND / "assets").glob(pattern), key=lambda p: p.stat().st_size)


class Counting:
    """ASGI wrapper counting the requests that reach the app behind the cache."""

    def __init__(self, app):
        self.app, self.calls = app, 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture()
def served():
    """Gradio's build folder behind Gradio's own Brotli middleware, with the cache inside it (as in the app)."""
    from gradio.brotli_middleware import BrotliMiddleware

    inner = Starlette()
    inner.mount("/assets", StaticFiles(directory=FRONTEND / "assets"))
    counting = Counting(inner)
    app = Starlette(middleware=[Middleware(BrotliMiddleware, quality=4), *compressed_assets.middleware()])
    app.mount("/", counting)
    with TestClient(app) as client:
        yield client, counting


def test_a_script_is_compressed_once_and_then_served_from_memory(served):
    client, counting = served
    script = _largest("*.js")
    url = f"/assets/{script.name}"
    first = client.get(url, headers={"Accept-Encoding": "br"})
    second = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert counting.calls == 1, "the second request should not reach Gradio"
    for r in (first, second):
        assert r.status_code == 200 and r.headers["content-encoding"] == "br"
        assert r.content == script.read_bytes()  # httpx decodes br: the file, byte for byte
        assert r.headers["content-type"].startswith(("application/javascript", "text/javascript"))
        assert "Accept-Encoding" in r.headers["vary"]
    raw = client.get(url, headers={"Accept-Encoding": "br"}).headers
    assert int(raw["content-length"]) < script.stat().st_size / 2


def test_what_the_cache_does_not_answer_reaches_gradio_unchanged(served):
    client, counting = served
    style = _largest("*.css")
    url = f"/assets/{style.name}"
    r = client.get(url, headers={"Accept-Encoding": "gzip"})  # no br: Gradio's gzip
    assert r.headers["content-encoding"] == "gzip" and r.content == style.read_bytes() and counting.calls == 1
    etag = client.get(url, headers={"Accept-Encoding": "identity"}).headers["etag"]
    r = client.get(url, headers={"Accept-Encoding": "br", "If-None-Match": etag})
    assert r.status_code == 304 and counting.calls == 3  # conditional: Gradio's own answer
    missing = client.get("/assets/no-such-file.js", headers={"Accept-Encoding": "br"})
    assert missing.status_code == 404
    missing = client.get("/assets/no-such-file.js", headers={"Accept-Encoding": "br"})
    assert missing.status_code == 404 and counting.calls == 5  # errors are never cached
    font = next((FRONTEND / "assets").glob("*.woff2"), None)
    if font is not None:  # not a compressible type: passed through
        r = client.get(f"/assets/{font.name}", headers={"Accept-Encoding": "br"})
        assert "content-encoding" not in r.headers and r.content == font.read_bytes()


def test_small_files_are_sent_as_they_are(served):
    client, counting = served
    small = min((FRONTEND / "assets").glob("*.js"), key=lambda p: p.stat().st_size)
    assert small.stat().st_size < compressed_assets.MINIMUM_SIZE
    for _ in range(2):
        r = client.get(f"/assets/{small.name}", headers={"Accept-Encoding": "br"})
        assert "content-encoding" not in r.headers and r.content == small.read_bytes()
    assert counting.calls == 1


def test_the_cache_has_a_memory_bound():
    cache = CompressedAssets(app=None, max_bytes=0)
    inner = Starlette()
    inner.mount("/assets", StaticFiles(directory=FRONTEND / "assets"))
    cache.app = inner
    with TestClient(cache) as client:
        r = client.get(f"/assets/{_largest('*.js').name}", headers={"Accept-Encoding": "br"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "br"
    assert cache.cached == {} and cache.cached_bytes == 0


def test_the_running_app_serves_its_scripts_compressed(running_app):
    """Over HTTP from the real app: the page's own scripts arrive brotli-compressed, decoding to Gradio's files."""
    page = urllib.request.urlopen(running_app.url, timeout=30).read().decode()
    names = re.findall(r'/assets/([\w.-]+\.(?:js|css))', page)
    assert names, "the page names no Gradio script"
    for name in names[:2]:
        req = urllib.request.Request(running_app.url + "assets/" + name, headers={"Accept-Encoding": "br"})
        for _ in range(2):
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.headers["Content-Encoding"] == "br"
                assert brotli.decompress(r.read()) == (FRONTEND / "assets" / name).read_bytes()
    req = urllib.request.Request(running_app.url + "assets/" + names[0], headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert gzip.decompress(r.read()) == (FRONTEND / "assets" / names[0]).read_bytes()


# --------------------------------------------------------------------------- prose


def test_prose_renders_the_markdown_the_app_writes():
    html = to_html("**VGG-11** on *MNIST*: `ratio`\n\n| branch | share |\n|---|---:|\n| 1x1 | 23% |")
    assert "<strong>VGG-11</strong>" in html and "<em>MNIST</em>" in html and "<code>ratio</code>" in html
    assert "<table>" in html and '<td style="text-align:right">23%</td>' in html
    assert to_html("    indented\n    second line") == to_html("indented\nsecond line")
    assert to_html(None) == to_html("") == ""


def test_prose_never_passes_raw_html_through():
    html = to_html('photo <img src=x onerror="alert(1)"> of a <script>alert(2)</script> shoe')
    assert "<img" not in html and "<script" not in html and "&lt;img" in html


def test_prose_is_markdown_in_and_html_out():
    with gr.Blocks():
        text = Prose("**bold**", elem_id="note", elem_classes="explain")
    assert text.value.strip() == "<p><strong>bold</strong></p>"  # the initial value, as sent to the page
    assert text.postprocess("a *b*").strip() == "<p>a <em>b</em></p>"  # what a handler returns
    assert text.elem_id == "note" and "explain" in text.elem_classes
    assert text.js_on_load is None  # a text: no click listener
