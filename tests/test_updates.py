"""An update as the page receives it: the app's Blocks (cnndemo.app.outputs.SkippingBlocks) sends what Gradio's own
``postprocess_data`` sends, output for output, without building the skipped outputs (the hidden tabs') again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import gradio as gr
import numpy as np
import types

import pytest
from gradio import processing_utils
from gradio.state_holder import SessionState
from PIL import Image, ImageDraw

from cnndemo import catalog
from cnndemo.app import layout, views
from cnndemo.app.outputs import SKIPPED, Picture, SkippingBlocks
from cnndemo.data.canvas import SIDE, encode_canvas


def both(demo, block_fn, result) -> tuple[list, list, SessionState, SessionState]:
    """(what the app sends, what Gradio itself sends, the app's session, Gradio's) for the handler result ``result()``
    makes (made once for each: Gradio changes the update dicts it is given).

    For a skipped ``gr.HTML`` Gradio sends the update marker as a property too (``{"props": {"__type__": "update"},
    "__type__": "update"}``: the page sets a prop named ``__type__`` on it); that counts as the plain marker here."""
    ours, theirs = SessionState(demo), SessionState(demo)
    sent = asyncio.run(demo.postprocess_data(block_fn, result(), ours))
    gradio_sent = asyncio.run(gr.Blocks.postprocess_data(demo, block_fn, result(), theirs))
    quirk = {"props": SKIPPED, **SKIPPED}
    return sent, [SKIPPED if value == quirk else value for value in gradio_sent], ours, theirs


def values_kept(session: SessionState, blocks) -> list:
    """The values the session keeps in its config for ``blocks`` (what a page reload shows)."""
    return [session.config_values.get(b._id, {}).get("props", {}).get("value") for b in blocks]


@pytest.fixture(scope="module")
def app(random_zoo):
    demo = layout.build_demo(random_zoo)
    canvas = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "canvas")
    event = next(fn for fn in demo.fns.values() if any(t[0] == canvas._id for t in fn.targets))
    return demo, event


def seven() -> str:
    im = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(im).line([(60, 50), (220, 50), (120, 240)], fill=255, width=22)
    return encode_canvas(np.asarray(im), seq=1)


@pytest.mark.parametrize("tab", list(catalog.TABS))
def test_a_canvas_update_reaches_the_page_as_gradio_sends_it(app, random_zoo, tab):
    demo, event = app
    assert isinstance(demo, SkippingBlocks)
    controls = [c for t in catalog.TABS.values()
                for c in (t.archs[0], views.default_layer(random_zoo, t.archs[0]), None)]
    request = types.SimpleNamespace(session_hash=f"updates-{tab}")  # one session per case: its seq 1 is new
    result = event.fn(seven(), 0, request, "mnist", tab, *controls)  # once: its counter differs on every call
    copied = lambda: {c: dict(v) if isinstance(v, dict) else v for c, v in result.items()}  # noqa: E731
    sent, gradio_sent, session, gradio_session = both(demo, event, copied)
    assert sent == gradio_sent
    skipped = [b for b, value in zip(event.outputs, sent) if value == SKIPPED]
    updated = [b for b in event.outputs if b not in skipped]
    assert values_kept(session, updated) == values_kept(gradio_session, updated)
    assert any(isinstance(value, Image.Image) for value in result.values())  # pictures, sent without Gradio's move
    shown = [value for value in sent if isinstance(value, dict) and value.get("path")]
    assert len(skipped) >= 10 and shown  # the hidden tabs' views; the visible tab's pictures are sent
    # Gradio rebuilds each skipped output in the session; the app leaves the page's own component there
    assert all(session.blocks_config.blocks[b._id] is b for b in skipped)


def test_anything_else_is_answered_as_gradio_answers_it():
    with SkippingBlocks() as demo:
        a, b, c = gr.Textbox(), gr.Number(), gr.Label()
        kept = gr.State(0)
        btn = gr.Button()
        btn.click(lambda: None, None, [a, b, c, kept])
        btn.click(lambda: None, None, [a])
        pic = Picture(format="png", type="pil", interactive=False)
        btn.click(lambda: None, None, [pic, a])
    many, one, with_picture = list(demo.fns.values())[-3:]
    results = [lambda: ("x", gr.skip(), {"cat": 0.9}, 5), gr.skip, lambda: {a: "only a"},
               lambda: {a: gr.skip(), kept: 7}, lambda: (gr.update(value="y", visible=False), 2, gr.skip(), gr.skip()),
               lambda: [gr.skip()] * 4]
    for result in results:
        sent, gradio_sent, _, _ = both(demo, many, result)
        assert sent == gradio_sent, result()
    picture = Image.new("RGB", (30, 20), (200, 30, 30))
    for result in [lambda: (picture, "x"), lambda: (picture, gr.skip()), lambda: (gr.update(value=picture), "y"),
                   lambda: (None, "z")]:
        sent, gradio_sent, ours, theirs = both(demo, with_picture, result)
        assert sent == gradio_sent and values_kept(ours, [pic, a]) == values_kept(theirs, [pic, a]), result()
    assert both(demo, one, gr.skip)[:2] == ([SKIPPED], [SKIPPED])
    for wrong in [("x", gr.skip()), {}]:  # Gradio's own message for a wrong count
        with pytest.raises(ValueError, match="output values"):
            asyncio.run(demo.postprocess_data(many, wrong, SessionState(demo)))


def test_a_picture_is_written_to_the_cache_once_where_gradio_puts_it(tmp_path):
    """The same picture sent twice (the filters on a tab's selection and on their accordion opening) is written once:
    Gradio rewrites the file in place, and a browser still reading it gets a truncated image."""
    picture = Image.new("L", (40, 20), 0)
    ImageDraw.Draw(picture).line([(0, 0), (39, 19)], fill=255, width=3)
    image = Picture(format="png", type="pil", interactive=False)
    image.GRADIO_CACHE = str(tmp_path)
    first = image.postprocess(picture)
    path = first.path
    assert path == processing_utils.save_pil_to_cache(picture, str(tmp_path / "gradio"), format="png").replace(
        str(tmp_path / "gradio"), str(tmp_path))  # the folder and name Gradio gives the same picture
    assert Path(path).read_bytes() == processing_utils.encode_pil_to_bytes(picture, "png")
    Path(path).write_bytes(b"written once")  # a second write would put the picture back
    again = image.postprocess(picture.copy())
    assert again.path == path and Path(path).read_bytes() == b"written once"
    Path(path).unlink()  # Gradio's cache cleaner took it: written again
    assert image.postprocess(picture).path == path
    assert Path(path).read_bytes() == processing_utils.encode_pil_to_bytes(picture, "png")
    assert sorted(p.name for p in Path(path).parent.iterdir()) == ["image.png"]  # no staging file left behind
    assert image.get_block_name() == "image"  # Gradio's own front end renders it
