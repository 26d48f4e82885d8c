"""Text on the visitor's page: Markdown written by the app, turned into HTML on the server.

``gr.Markdown`` parses its Markdown in the browser: every page that shows one loads Gradio's Markdown
renderer and code highlighter (three more scripts and a stylesheet, ~100 kB of JavaScript to parse) and runs
it for every text. The page's first screen has five such texts, and they made its load ~10% slower (A/B in
headless Chromium on a 2-core machine; see BENCHMARKS.md). :class:`Prose` is a ``gr.HTML`` (already on the
page for the canvas) whose value is the same Markdown rendered to HTML by markdown-it-py (CommonMark plus
tables), with raw HTML escaped, so a handler returns exactly what it returned to ``gr.Markdown``.

The API endpoints keep ``gr.Markdown``: clients receive Markdown text there, as before.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import gradio as gr


# gr.Markdown's own styles (from Gradio's Markdown stylesheet, which this page no longer loads), for the texts
# marked CLASS; ``demo.launch(css=...)`` includes it (cnndemo.app.layout).
CLASS = "cd-prose"
CSS = f"""
.block.{CLASS} > .html-container {{padding: 0;}}
div.prose.{CLASS} {{font-size: var(--text-md); line-height: 1.4; overflow-wrap: anywhere;}}
div.prose.{CLASS} p:not(:first-child) {{margin-top: var(--spacing-xxl);}}
div.prose.{CLASS} code {{font-family: var(--font-mono); font-size: var(--text-sm); line-height: 1.4;
  padding: var(--spacing-xxs) var(--spacing-xs); border-radius: var(--radius-xs);
  background: var(--code-background-fill); border: 1px solid var(--panel-border-color);}}
div.prose.{CLASS} :is(table, tr, td, th) {{margin-top: var(--spacing-sm); margin-bottom: var(--spacing-sm);
  padding: var(--spacing-xl);}}
div.prose.{CLASS} table {{word-break: break-word;}}
"""


@functools.cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    # html=False: any "<" in a text (a file name, a label) is shown, never interpreted
    return MarkdownIt("commonmark", {"html": False}).enable("table")


@functools.lru_cache(maxsize=1024)  # a view's texts repeat from one pen move to the next (~0.3 ms a table)
def to_html(text: str | None) -> str:
    """``text`` (Markdown, indented or not, as ``gr.Markdown`` takes it) as HTML."""
    return _parser().render(inspect.cleandoc(text)) if text else ""


class Prose(gr.HTML):
    """``gr.Markdown``'s look (Gradio's prose styles) for the app's own texts, without its browser-side parser.

    Takes ``gr.Markdown``'s layout arguments (``elem_id``, ``elem_classes``, ``container``, ``scale``,
    ``min_width``, ``visible``, ``render``); its value, initial or returned by a handler, is Markdown."""

    def __init__(self, value: str | None = None, *, elem_classes: str | list[str] | None = None, **kwargs: Any) -> None:
        classes = [elem_classes] if isinstance(elem_classes, str) else list(elem_classes or [])
        super().__init__(value, js_on_load=None, elem_classes=[CLASS, *classes], **kwargs)

    def postprocess(self, value: str | None) -> str | None:
        return to_html(value) if isinstance(value, str) else value
