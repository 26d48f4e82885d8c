"""Start-up (cnndemo.app.startup): the page's web server app is built by ``launch()`` only, and whatever reads
``demo.app`` before that still gets Gradio's app."""

from __future__ import annotations

import urllib.request

import gradio as gr
from gradio.routes import App

from cnndemo.app.startup import AppOnLaunch


def _built(monkeypatch) -> list:
    """Record every FastAPI app Gradio builds from now on (the blocks it is built for)."""
    made: list = []
    real = App.create_app

    def counted(blocks, *args, **kwargs):
        made.append(blocks)
        return real(blocks, *args, **kwargs)

    monkeypatch.setattr(App, "create_app", staticmethod(counted))
    return made


def _page(cls):
    with cls() as demo:
        text = gr.Textbox()
        text.submit(str.upper, text, text, api_name="upper")
    with demo.route("Other", "other"):
        gr.Markdown("another page")
    return demo.queue(max_size=10)


def test_building_a_page_builds_no_server_app_and_launch_builds_one(monkeypatch):
    made = _built(monkeypatch)
    plain = _page(gr.Blocks)
    assert len(made) == 4 and set(map(id, made)) == {id(plain)}  # Gradio's own: __init__, two exits, queue()
    made.clear()
    demo = _page(AppOnLaunch)
    assert made == []
    demo.launch(server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        assert made == [demo] and isinstance(demo.app, App)
        with urllib.request.urlopen(demo.local_url + "config", timeout=30) as response:
            assert b'"upper"' in response.read()
    finally:
        demo.close()


def test_the_app_read_before_launch_is_gradios(monkeypatch):
    made = _built(monkeypatch)
    demo = _page(AppOnLaunch)
    assert made == []
    router = demo.app.router  # anything read from it builds Gradio's app, once
    assert made == [demo] and router is demo.app.router
    assert any(getattr(route, "path", "") == "/config" for route in router.routes)
    assert made == [demo]


def test_the_real_page_is_built_that_way(random_zoo, monkeypatch):
    from cnndemo.app import layout

    made = _built(monkeypatch)
    demo = layout.build_demo(random_zoo)
    assert isinstance(demo, AppOnLaunch) and made == []
