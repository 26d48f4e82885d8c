"""Widgets that load when they are first shown (a tab selected, an accordion opened), not with the page.

Gradio's browser code fetches and starts the code of every visible component type of a page when the page loads,
in every tab and closed accordion alike: the Fine-tune tab's plots and galleries, the Labs' sketchpad, the
architecture summaries' code editor. A deferred block's components are created hidden instead (Gradio neither
fetches their code nor draws them) and are made visible when the block is shown: that first
visit pays one round trip and the components' code, the page load pays nothing for them.

:func:`defer_hidden_parts` applies this to everything a visitor does not see when the page opens.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def defer(block: BlockContext, trigger: Any) -> list[Component]:
    """Hide the visible components under ``block`` until ``trigger`` (e.g. ``tab.select``, ``accordion.expand``)
    first fires; returns them. Components the builder hid on purpose stay as they were."""
    shown = list(_leaves(block))
    if not shown:
        return shown
    for component in shown:
        component.visible = False
        setattr(component, _DEFERRED_FLAG, True)

    def reveal():  # idempotent (no handler hides these later), so no "already shown" state is kept per session
        updates = [gr.update(visible=True) for _ in shown]
        return updates if len(updates) > 1 else updates[0]  # one output takes the value itself, not a list

    trigger(reveal, None, shown, queue=False, api_visibility="private", show_progress="hidden")
    return shown


def _depth(block: Any) -> int:
    depth = 0
    while getattr(block, "parent", None) is not None:
        block, depth = block.parent, depth + 1
    return depth


def defer_hidden_parts(demo: gr.Blocks, tabs: gr.Tabs) -> None:
    """Defer every closed accordion of ``demo`` (until it is opened; the deepest first, so a nested one waits for
    its own) and every tab of ``tabs`` but the selected one (until it is selected)."""
    accordions = [b for b in demo.blocks.values() if isinstance(b, gr.Accordion) and b.open is False]
    for accordion in sorted(accordions, key=_depth, reverse=True):
        defer(accordion, accordion.expand)
    for tab in tabs.children:
        if isinstance(tab, gr.Tab) and tab.id != tabs.selected:
            defer(tab, tab.select)
