"""The live canvas component (cnndemo/app/canvas.py) in a real browser: its tools, keys and send protocol.

The real app is driven by tests/test_browser.py; this file checks the component on its own, quickly: a small
gr.Blocks (the canvas wired to the residual_net MNIST checkpoint, a gr.Label with elem_id "label-vgg", and a tall
spacer so the page can scroll) is launched in-process on a free port and driven with headless Chromium with
mouse strokes and keys (the phone page with finger strokes is in tests/test_browser.py, on the real app).
No timed assertions: waits poll for states.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from cnndemo.train.checkpoints import list_pretrained
from conftest import wait_until  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ONE = [(0.50, 0.15), (0.50, 0.50), (0.49, 0.85)]
SEVEN = [(0.25, 0.20), (0.72, 0.20), (0.62, 0.42), (0.50, 0.85)]
BAR = [(0.20, 0.52), (0.80, 0.52)]
WAIT = 60.0  # generous: the machine is shared


def build_app():
    """The canvas -> residual_net (MNIST) -> Label page; returns the gr.Blocks."""
    import gradio as gr
    import torch

    from cnndemo.app.canvas import DrawingCanvas, on_draw
    from cnndemo.data.canvas import ink_image
    from cnndemo.train.checkpoints import load_pretrained
    from cnndemo.data.decode import InputError
    from cnndemo.data.framing import prepare

    model, meta = load_pretrained("residual_net", "mnist", device="cpu")

    def classify(_request, alpha):
        if alpha is None:
            return None
        try:
            x = prepare(ink_image(alpha), "mnist").tensor
        except InputError:
            return None
        with torch.no_grad():
            p = model(x).softmax(1)[0]
        return {str(meta["classes"][i]): float(p[i]) for i in range(len(p))}

    with gr.Blocks(title="canvas test") as demo:
        with gr.Row():
            with gr.Column():
                canvas = DrawingCanvas()
            with gr.Column():
                label = gr.Label(num_top_classes=3, elem_id="label-vgg", label="Prediction")
        gr.HTML('<div id="spacer" style="height: 1600px"></div>', js_on_load=None)
        on_draw(canvas, classify, [label])
    return demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    if ("residual_net", "mnist") not in list_pretrained():
        pytest.skip("no residual_net MNIST checkpoint")
    demo = build_app()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser(url):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def state(page) -> dict:
    """The canvas's own bookkeeping: payloads sent / answered, strokes kept."""
    return page.evaluate("""() => { const d = document.querySelector('#canvas .cd-wrap').dataset;
        return {seq: +(d.seq || 0), acked: +(d.acked || 0), strokes: +(d.strokes || 0)}; }""")


def label(page) -> str:
    """The predicted class shown, or "" when the Label is blank."""
    loc = page.locator("#label-vgg .output-class")
    return loc.first.inner_text().strip() if loc.count() else ""


def wait_for(predicate, what: str, timeout: float = WAIT):
    return wait_until(predicate, what, timeout)


def settled(page) -> str:
    """Wait until the newest payload is answered; the label then shown."""
    wait_for(lambda: (s := state(page))["seq"] > 0 and s["acked"] == s["seq"], "the last drawing to be answered")
    return label(page)


def surface(page):
    box = page.locator("#canvas canvas").bounding_box()
    return box["x"], box["y"], box["width"]


def stroke_down(page, points, pause: float = 0.03):
    """Press at the first point and move through the rest slowly (pen still down)."""
    x0, y0, side = surface(page)
    (u, v), rest = points[0], points[1:]
    page.mouse.move(x0 + u * side, y0 + v * side)
    page.mouse.down()
    for u1, v1 in rest:
        for k in range(1, 13):
            page.mouse.move(x0 + (u + (u1 - u) * k / 12) * side, y0 + (v + (v1 - v) * k / 12) * side)
            time.sleep(pause)
        u, v = u1, v1


@pytest.fixture
def page(browser, url):
    p = browser.new_page(viewport={"width": 1280, "height": 900})
    p.goto(url)
    p.wait_for_selector("#canvas canvas")
    wait_for(lambda: p.evaluate("document.querySelector('#canvas canvas').width > 0"), "the canvas to size itself")
    yield p
    p.close()


def test_predictions_follow_the_pen(page):
    stroke_down(page, ONE)
    # Still drawing: answers arrive while the pen is down.
    wait_for(lambda: state(page)["acked"] >= 2 and label(page), "a prediction before pen-up")
    page.mouse.up()
    assert settled(page) == "1"

    page.get_by_role("button", name="Clear the canvas (Delete)").click()
    assert settled(page) == "" and state(page)["strokes"] == 0

    stroke_down(page, SEVEN)
    seen = set()
    # The prediction changes to the 7 before the pen lifts.
    wait_for(lambda: seen.add(label(page)) or label(page) == "7", "the 7 to be recognised while drawing")
    before_up = state(page)
    assert before_up["acked"] >= 2
    page.mouse.up()
    assert settled(page) == "7"
    assert state(page)["seq"] > before_up["seq"]  # pen-up sent one more payload


def test_undo_clear_and_eraser(page):
    stroke_down(page, ONE, pause=0.0)
    page.mouse.up()
    assert settled(page) == "1"
    stroke_down(page, BAR, pause=0.0)
    page.mouse.up()
    settled(page)
    assert state(page)["strokes"] == 2
    page.locator("#canvas .cd-surface").focus()
    page.keyboard.press("Control+z")  # keyboard undo of the bar
    assert settled(page) == "1" and state(page)["strokes"] == 1
    page.get_by_role("button", name="Undo (Ctrl+Z)").click()
    assert settled(page) == "" and state(page)["strokes"] == 0
    assert page.get_by_role("button", name="Undo (Ctrl+Z)").is_disabled()

    stroke_down(page, ONE, pause=0.0)
    page.mouse.up()
    assert settled(page) == "1"
    page.get_by_role("button", name="Eraser (E)").click()
    assert page.get_by_role("button", name="Eraser (E)").get_attribute("aria-pressed") == "true"
    stroke_down(page, ONE, pause=0.0)  # erase the 1 along its own path
    page.mouse.up()
    assert settled(page) == ""
    page.keyboard.press("Delete")
    assert state(page)["strokes"] == 0


def test_buttons_are_keyboard_reachable(page):
    stroke_down(page, ONE, pause=0.0)  # undo and clear are disabled (not focusable) on an empty canvas
    page.mouse.up()
    settled(page)
    page.evaluate("document.activeElement.blur()")
    names = []
    while len(names) < 8 and "Clear the canvas (Delete)" not in names:
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.getAttribute('aria-label')"))
    assert {"Pen (P)", "Eraser (E)", "Undo (Ctrl+Z)", "Clear the canvas (Delete)"} <= set(names)
    page.keyboard.press("Enter")  # on "Clear": a real <button>, Enter activates it
    assert settled(page) == "" and state(page)["strokes"] == 0
