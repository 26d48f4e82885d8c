"""Start-up: the page's web server app (FastAPI) is built once, by ``launch()``, instead of five times.

Gradio builds a whole FastAPI app (about 85 routes, each one analysed by FastAPI and pydantic) when a
``gr.Blocks`` is created (it calls ``queue()``), at every ``with`` exit (the page and its ``route()`` page) and at
every ``queue()`` call; ``launch()`` then builds the one that serves and drops the others. For this app that is four
apps nobody uses, about 0.07 s each once warm and more on a cold start: a third of the margin of ``python app.py``'s
time to page (BENCHMARKS.md). :class:`AppOnLaunch` keeps a stand-in there instead. The stand-in builds Gradio's app
the first time anything uses it (``demo.app.<anything>`` before ``launch()``), so nothing that reads it changes.

Other ``gr.Blocks`` are not affected: the stand-in is only made for an :class:`AppOnLaunch`, and only for the
calls described above (Gradio's ``create_app(blocks, mcp_server=False)``); any other call goes to Gradio.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import gradio.blocks
from gradio.routes import App


class _AppOnFirstUse:
    """Stands in for the FastAPI app of ``blocks`` until something uses it, then is that app."""

    def __init__(self, blocks: gr.Blocks) -> None:
        self._blocks = blocks
        self._app: App | None = None

    def built(self) -> App:
        if self._app is None:
            self._app = App.create_app(self._blocks, mcp_server=False)
        return self._app

    def __getattr__(self, name: str) -> Any:  # only called for names the stand-in itself does not have
        if name in ("_blocks", "_app"):  # not set yet (a copy being made): no app to build, and no recursion
            raise AttributeError(name)
        return getattr(self.built(), name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # as an ASGI app
        await self.built()(scope, receive, send)


class _Apps(App):
    """What ``gradio.blocks`` calls ``App``: Gradio's, except that the apps an :class:`AppOnLaunch` would build
    before ``launch()`` are stand-ins."""

    @staticmethod
    def create_app(blocks: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(blocks, AppOnLaunch) and not args and kwargs == {"mcp_server": False}:
            return _AppOnFirstUse(blocks)
        return App.create_app(blocks, *args, **kwargs)


class AppOnLaunch(gr.Blocks):
    """``gr.Blocks`` whose FastAPI app is built by ``launch()`` only (see the module docstring)."""


# launch() imports App from gradio.routes itself, so the app that serves is always Gradio's own.
gradio.blocks.App = _Apps
