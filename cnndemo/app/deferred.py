"""Widgets that load when they are first shown (a tab selected, an accordion opened), not with the page.

Gradio's browser code fetches and starts the code of every visible component type of a page when the page loads,
in every tab and closed accordion alike: the Fine-tune tab's plots and galleries, the Labs' sketchpad, the
architecture summaries' code editor. A deferred block's components are created hidden instead (Gradio neither
fetches their code nor draws them) and are made visible when the block is shown: that first
visit pays one round trip and the components' code, the page load pays nothing for them.

:func:`defer_hidden_parts` applies this to everything a visitor does not see when the page opens.

Hidden components still cost the page: Gradio's browser code walks the page's whole component tree three times
while it loads (about 1 ms per component here, 217 of them). The three largest tabs (Why?, Fine-tune, Labs) are
therefore not on the page until they are opened: :func:`build_when_opened` builds a tab's contents with ``gr.render``
the first time the tab is selected (once per browser session). Events inside it are per session and private, so
those tabs' named endpoints are API-only twins on the endpoint page (same functions, same component types).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from gradio.blocks import BlockContext
from gradio.components import Component

_DEFERRED_FLAG = "_cnndemo_deferred"


def _leaves(block: BlockContext) -> Iterator[Component]:
    """The components under ``block`` that are visible now, not inside a hidden container, not yet deferred."""
    for child in getattr(block, "children", []):
        if isinstance(child, BlockContext):
            if child.visible is not False:
                yield from _leaves(child)
        elif isinstance(child, Component) and child.visible is True and not getattr(child, _DEFERRED_FLAG, False):
            yield child


def _shown_at_first(block: BlockContext) -> Iterator[Component]:
    """The visible components under ``block`` outside closed accordions and unselected tabs."""
    for child in getattr(block, "children", []):
        if isinstance(child, gr.Accordion) and child.open is False or child.visible is False:
            continue
        if isinstance(child, gr.Tabs):
            tabs = [t for t in child.children if isinstance(t, gr.Tab)]
            chosen = next((t for t in tabs if t.id == child.selected), tabs[0] if tabs else None)
            yield from _shown_at_first(chosen) if chosen is not None else ()
        elif isinstance(child, BlockContext):
            yield from _shown_at_first(child)
        elif isinstance(child, Component):
            yield child


def defer(block: BlockContext, trigger: Any, loaded: frozenset[str] = frozenset()) -> list[Component]:
    """Hide the visible components under ``block`` until ``trigger`` (e.g. ``tab.select``, ``accordion.expand``)
    first fires; returns them. Components the builder hid on purpose stay as they were, and so do those of a type
    in ``loaded`` (its code is on the page anyway; Gradio itself does not draw what a closed accordion or an
    unselected tab holds). Nothing to hide: no event."""
    shown = [c for c in _leaves(block) if c.get_block_name() not in loaded]
    if not shown:
        return shown
    for component in shown:
        component.visible = False
        setattr(component, _DEFERRED_FLAG, True)

    def reveal():  # idempotent (no handler hides these later), so no "already shown" state is kept per session
        return as_outputs([gr.update(visible=True) for _ in shown])

    trigger(reveal, None, shown, queue=False, api_visibility="private", show_progress="hidden")
    return shown


def as_outputs(values: list) -> Any:
    """``values`` as a handler's return value: Gradio takes a lone output's return value as is, so one value is
    returned bare (a one-item list would become the component's value)."""
    return values[0] if len(values) == 1 else values


def _depth(block: Any) -> int:
    depth = 0
    while getattr(block, "parent", None) is not None:
        block, depth = block.parent, depth + 1
    return depth


def defer_hidden_parts(demo: gr.Blocks) -> None:
    """Defer every closed accordion of ``demo`` (until it is opened; the deepest first, so a nested one waits for
    its own) and every tab but the selected one of each ``gr.Tabs`` (until it is selected), as far as they hold
    component types the first screen does not show (every reveal is one more event for the page to load)."""
    loaded = frozenset(c.get_block_name() for c in _shown_at_first(demo))
    accordions = [b for b in demo.blocks.values() if isinstance(b, gr.Accordion) and b.open is False]
    for accordion in sorted(accordions, key=_depth, reverse=True):
        defer(accordion, accordion.expand, loaded)
    for tabs in [b for b in demo.blocks.values() if isinstance(b, gr.Tabs)]:
        for tab in tabs.children:
            if isinstance(tab, gr.Tab) and tab.id != tabs.selected:
                defer(tab, tab.select, loaded)


def build_when_opened(tab: gr.Tab, build: Callable[..., None], inputs: list | None = None,
                      on_select: Callable[[], dict] | None = None) -> None:
    """Call inside ``with tab:``: run ``build(*values of inputs)`` (which creates the tab's components and their
    private events) the first time ``tab`` is selected in a browser session, not when the page loads. Selecting it
    again changes nothing, so what the tab shows (a run in progress, a plot) stays.

    ``on_select``: ``{component: value}`` more to set, at once (unqueued), every time the tab is selected, in the
    same event (each event costs the page's load; its components must be known: the dict is made once here for
    them)."""
    # A hidden checkbox, not a gr.State: the browser fires a component's change event when an event sets its value
    # (hidden or not), while a State's value lives on the server and fires nothing here.
    opened = gr.Checkbox(False, visible=False)

    @gr.render(inputs=[opened, *(inputs or [])], triggers=[opened.change], show_progress="minimal")
    def contents(is_open: bool, *values: Any) -> None:
        if is_open:
            build(*values)

    also = list((on_select or dict)())

    def select(was_open: bool) -> Any:
        more = on_select() if on_select else {}
        return as_outputs([gr.skip() if was_open else True, *(more[c] for c in also)])

    tab.select(select, opened, [opened, *also], queue=False, api_visibility="private", show_progress="hidden")

