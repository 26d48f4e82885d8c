"""A real browser (headless Chromium via Playwright): draw a digit with the mouse, read the prediction,
switch tabs, see feature maps render. Saves artifacts/browser.png.

Needs Debian's ``chromium`` at /usr/bin/chromium (or $CHROMIUM) and an MNIST checkpoint.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from cnndemo.train.checkpoints import list_pretrained

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
TAB_OF = {"vgg11": ("vgg", "VGG", None), "resnet18": ("resnet", "ResNet", None),
          "googlenet": ("googlenet", "GoogLeNet", None),
          "residual_net": ("resnet", "ResNet", "Course residual net (seed 002)"),
          "inception_net": ("googlenet", "GoogLeNet", "Course Inception net (seed 002)")}
# A '7' as mouse strokes, in fractions of the drawing area: the top bar, then the slanted stem.
SEVEN = [[(0.28, 0.22), (0.72, 0.22), (0.66, 0.34), (0.55, 0.55), (0.46, 0.80)]]


def _mnist_arch() -> str:
    available = {a for a, d in list_pretrained() if d == "mnist"}
    for arch in TAB_OF:
        if arch in available:
            return arch
    pytest.skip("no MNIST checkpoint to classify the drawing with")


@pytest.fixture(scope="module")
def browser(running_app):  # the app first: it is the slow part to start
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


def _draw(page, strokes) -> None:
    """Draw ``strokes`` on the Sketchpad with mouse down / move / up, like a person."""
    area = page.locator("#canvas canvas").last
    box = area.bounding_box()
    # The drawable image sits centred in the canvas element: use its central square.
    side = min(box["width"], box["height"]) * 0.9
    x0, y0 = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    for stroke in strokes:
        (u, v), rest = stroke[0], stroke[1:]
        page.mouse.move(x0 + u * side, y0 + v * side)
        page.mouse.down()
        for u, v in rest:
            page.mouse.move(x0 + u * side, y0 + v * side, steps=15)
        page.mouse.up()


def _top_label(page, tab: str, timeout: float = 300) -> str:
    """The predicted class shown in ``tab``'s Label (waits until there is one)."""
    locator = page.locator(f"#label-{tab} .output-class")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if locator.count() and locator.first.inner_text().strip():
            return locator.first.inner_text().strip()
        time.sleep(0.2)
    raise AssertionError(f"no prediction shown in the {tab} tab")


def _image_rendered(page, selector: str, timeout: float = 300) -> dict:
    """Wait until an <img> inside ``selector`` has loaded; return its natural size and src."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = page.evaluate(
            """(sel) => { const img = document.querySelector(sel + ' img');
                 return img && img.complete ? {w: img.naturalWidth, h: img.naturalHeight, src: img.src} : null; }""",
            selector)
        if info and info["w"] > 0:
            return info
        time.sleep(0.2)
    raise AssertionError(f"no image rendered in {selector}")


def test_draw_a_seven_and_look_inside(browser, running_app):
    arch = _mnist_arch()
    tab, tab_title, course_choice = TAB_OF[arch]
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(300_000)  # generous upper bounds: a loaded CI machine can be slow
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(running_app.url)
    page.wait_for_selector("#canvas canvas")
    # The page selects the brush itself (a student should not have to find the tool first).
    page.wait_for_function(
        "() => !document.querySelector('#canvas')?.innerText.includes('select the draw tool')")
    assert "running on" in page.locator("#hero").inner_text()  # the device is shown

    if tab != "vgg":
        page.get_by_role("tab", name=tab_title).click()
    if course_choice:
        page.get_by_label(course_choice).check()
    _draw(page, SEVEN)
    assert _top_label(page, tab) == "7"
    sees = _image_rendered(page, "#sees")
    assert sees["w"] == 224  # the 28 x 28 input, shown 8x

    # Switch to another network tab: its prediction and feature maps render for the same drawing.
    other = next((t for t in ("googlenet", "resnet", "vgg") if t != tab), "vgg")
    other_title = {"vgg": "VGG", "googlenet": "GoogLeNet", "resnet": "ResNet"}[other]
    page.get_by_role("tab", name=other_title).click()
    other_arch = {"vgg": "vgg11", "googlenet": "googlenet", "resnet": "resnet18"}[other]
    if not any(a == other_arch and d == "mnist" for a, d in list_pretrained()):
        course = {"googlenet": ("inception_net", "Course Inception net (seed 002)"),
                  "resnet": ("residual_net", "Course residual net (seed 002)")}.get(other)
        if course and (course[0], "mnist") in list_pretrained():
            page.get_by_label(course[1]).check()
        else:
            page.get_by_role("tab", name=tab_title).click()
            other = tab
    grid = _image_rendered(page, f"#fmap-{other}")
    assert grid["w"] > 200 and grid["h"] > 50
    _top_label(page, other)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)
    assert not errors, errors
    page.close()
