"""The real app (``python app.py``) in a real browser (headless Chromium via Playwright): predictions follow the pen.

Draws digits on the live canvas with mouse strokes (the prediction changes before the pen lifts and settles on
the digit drawn), switches tabs (feature maps render from the last drawing), and draws with a finger on a
390 x 844 phone page (touch events through the DevTools protocol) without scrolling the page. No timed
assertions: waits poll for states. Saves artifacts/browser.png and artifacts/phone.png.

Needs Debian's ``chromium`` at /usr/bin/chromium (or $CHROMIUM) and an MNIST checkpoint.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from cnndemo.train.checkpoints import list_pretrained
from conftest import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT = 300.0  # generous upper bound: a loaded CI machine can be slow
# Strokes in fractions of the drawing area.
SEVEN = [(0.25, 0.20), (0.72, 0.20), (0.62, 0.42), (0.50, 0.85)]
ONE = [(0.50, 0.15), (0.50, 0.50), (0.49, 0.85)]
TAB_TITLES = {"vgg": "VGG", "googlenet": "GoogLeNet", "resnet": "ResNet"}


@pytest.fixture(scope="module")
def browser(running_app):  # the app first: it is the slow part to start
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    if ("vgg11", "mnist") not in list_pretrained():
        pytest.skip("no VGG-11 MNIST checkpoint (the first tab's model)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _image_rendered(page, selector: str, timeout: float = 300) -> dict:
    """Wait until an <img> inside ``selector`` has loaded; return its natural size and src (used by the other
    browser tests too)."""
    probe = """(sel) => { const img = document.querySelector(sel + ' img');
                 return img && img.complete ? {w: img.naturalWidth, h: img.naturalHeight, src: img.src} : null; }"""
    return wait_until(lambda: (lambda info: info if info and info["w"] > 0 else None)(page.evaluate(probe, selector)),
                      f"an image rendered in {selector}", timeout, interval=0.2)


def wait_for(predicate, what: str, timeout: float = WAIT, page=None):
    detail = (lambda: f"canvas {state(page)}, label {label(page)!r}{_failure_picture(page)}") if page is not None else None
    return wait_until(predicate, what, timeout, detail=detail)


def _failure_picture(page) -> str:
    """A screenshot of the page as it was when a wait failed (artifacts/browser-failure.png), for the report."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))
    return "; page at artifacts/browser-failure.png"


def state(page) -> dict:
    """The canvas's own bookkeeping: payloads sent / answered, strokes kept."""
    return page.evaluate("""() => { const d = document.querySelector('#canvas .cd-wrap').dataset;
        return {seq: +(d.seq || 0), acked: +(d.acked || 0), strokes: +(d.strokes || 0)}; }""")


def label(page, tab: str = "vgg") -> str:
    """The predicted class shown in ``tab``, or "" when its Label is blank."""
    loc = page.locator(f"#label-{tab} .output-class")
    return loc.first.inner_text().strip() if loc.count() else ""


def settled(page, tab: str = "vgg") -> str:
    """Wait until the newest drawing is answered; the label then shown."""
    wait_for(lambda: (s := state(page))["seq"] > 0 and s["acked"] == s["seq"], "the last drawing to be answered")
    return label(page, tab)


def image_rendered(page, selector: str) -> dict:
    """Wait until an <img> inside ``selector`` has loaded; its natural size and src."""
    js = """(sel) => { const img = document.querySelector(sel + ' img');
             return img && img.complete && img.naturalWidth ? {w: img.naturalWidth, h: img.naturalHeight, src: img.src} : null; }"""
    return wait_for(lambda: page.evaluate(js, selector), f"an image in {selector}")


def surface(page) -> tuple[float, float, float]:
    box = page.locator("#canvas canvas").bounding_box()
    return box["x"], box["y"], box["width"]


def stroke_down(page, points, steps: int = 12, pause: float = 0.03) -> None:
    """Press at the first point and move through the rest like a hand (the pen stays down)."""
    x0, y0, side = surface(page)
    (u, v), rest = points[0], points[1:]
    page.mouse.move(x0 + u * side, y0 + v * side)
    page.mouse.down()
    for u1, v1 in rest:
        for k in range(1, steps + 1):
            page.mouse.move(x0 + (u + (u1 - u) * k / steps) * side, y0 + (v + (v1 - v) * k / steps) * side)
            time.sleep(pause)
        u, v = u1, v1


def open_app(page, url: str) -> None:
    page.set_default_timeout(WAIT * 1000)
    page.goto(url)
    page.wait_for_selector("#canvas canvas")
    wait_for(lambda: page.evaluate("document.querySelector('#canvas canvas').width > 0"), "the canvas to size itself")
    # Strokes are aimed at where the canvas is: wait until the page's layout holds it still for a moment.
    places = []
    wait_for(lambda: places.append(surface(page)) or places[-6:] == [places[-1]] * 6, "the canvas to stay in place")


def test_predictions_follow_the_pen_and_look_inside(browser, running_app):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_app(page, running_app.url)
    assert "running on" in page.locator("#hero").inner_text()  # the device is shown

    # A 1, then clear: answers arrive while the pen is still down, and settle on the digit.
    stroke_down(page, ONE)
    wait_for(lambda: state(page)["acked"] >= 2 and label(page), "a prediction before pen-up", page=page)
    page.mouse.up()
    assert settled(page) == "1"
    page.get_by_role("button", name="Clear the canvas (Delete)").click()
    assert settled(page) == "" and state(page)["strokes"] == 0

    # A 7 in one stroke: the prediction changes to 7 before the pen lifts, and stays 7 after pen-up.
    stroke_down(page, SEVEN)
    seen: set[str] = set()
    wait_for(lambda: seen.add(label(page)) or label(page) == "7", "the 7 to be recognised while drawing")
    before_up = state(page)
    assert before_up["acked"] >= 2 and len(seen - {""}) >= 1
    page.mouse.up()
    assert settled(page) == "7"
    assert state(page)["seq"] > before_up["seq"]  # pen-up sent one more payload
    assert image_rendered(page, "#sees")["w"] == 224  # what the network sees: 28 x 28, shown 8x
    assert image_rendered(page, "#fmap-vgg")["w"] > 200

    # Another tab renders from the last drawing (it computed nothing while hidden).
    page.get_by_role("tab", name=TAB_TITLES["googlenet"]).click()
    assert wait_for(lambda: label(page, "googlenet"), "the GoogLeNet prediction") == "7"
    grid = image_rendered(page, "#fmap-googlenet")
    assert grid["w"] > 200 and grid["h"] > 50
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_phone_finger_draws_without_scrolling(browser, running_app):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    open_app(page, running_app.url)
    cdp = ctx.new_cdp_session(page)
    css, px = page.evaluate("(() => { const c = document.querySelector('#canvas canvas'); "
                            "return [c.getBoundingClientRect().width, c.width]; })()")
    assert abs(px - 3 * css) <= 3  # a backing store sized for the 3x screen: crisp lines

    def swipe(points, x0, y0, side):
        def touch(kind, u=0.0, v=0.0):
            pts = [] if kind == "touchEnd" else [{"x": x0 + u * side, "y": y0 + v * side, "id": 1}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": pts})
        (u, v), rest = points[0], points[1:]
        touch("touchStart", u, v)
        for u1, v1 in rest:
            for k in range(1, 16):
                touch("touchMove", u + (u1 - u) * k / 15, v + (v1 - v) * k / 15)
                time.sleep(0.02)
            u, v = u1, v1
        touch("touchEnd")

    x0, y0, side = surface(page)
    assert y0 + side <= 844, "the whole canvas is on the first screen"
    swipe(ONE, x0, y0, side)
    assert settled(page) == "1"
    assert page.evaluate("window.scrollY") == 0  # drawing did not scroll the page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone.png"))

    # The control: the same kind of swipe on the page below the canvas does scroll it.
    swipe([(0.5, 0.0), (0.5, -0.6)], 0, y0 + side + 60, side)
    wait_for(lambda: page.evaluate("window.scrollY") > 0, "a swipe outside the canvas to scroll the page")
    ctx.close()
