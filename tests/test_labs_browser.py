"""The labs in the real app, in a real browser (headless Chromium): the GoogLeNet tab's bottleneck calculator follows
the selected module, the first-conv kernel grid shows in a network tab, and a short vanishing-gradients run started
from the Labs tab updates the page. Saves artifacts/labs.png and artifacts/bottleneck.png (the README's screenshots).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cnndemo.data.fetch import verify
from cnndemo.train.checkpoints import list_pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import ARTIFACTS, _image_rendered, browser  # noqa: E402,F401 - the shared Chromium fixture


def _wait_text(page, selector: str, predicate, timeout: float = 300) -> str:
    """Wait until the inner text of ``selector`` (no-break spaces read as spaces) satisfies ``predicate``; return it."""
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        loc = page.locator(selector)
        text = loc.first.inner_text().replace("\xa0", " ") if loc.count() else ""
        if predicate(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"{selector} never matched; last text: {text[:300]!r}")


def _page(browser, running_app):
    """A fresh page on the app, and the list its JavaScript errors go to."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(300_000)  # generous upper bounds: a loaded CI machine can be slow
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(running_app.url)
    return page, errors


def _open(page, accordion_id: str) -> None:
    page.locator(f"#{accordion_id} > button").first.click()


def test_bottleneck_accordion_and_kernel_grid_in_the_googlenet_tab(browser, running_app):
    if not any(a == "googlenet" for a, _ in list_pretrained()):
        pytest.skip("no GoogLeNet checkpoint")
    page, errors = _page(browser, running_app)
    page.get_by_role("tab", name="GoogLeNet").click()
    _open(page, "bottleneck")
    first = _wait_text(page, "#bottleneck-table", lambda t: "3a" in t and "total" in t)
    assert "input 120 x" not in first  # 3a of the app's GoogLeNet sees the stem's 48 channels, not 4a's 120
    # Pick module 4a in the tab's own module menu: the calculator follows.
    module = page.locator("#module-googlenet input")
    module.click()
    page.get_by_role("option", name="4a", exact=True).click()
    text = _wait_text(page, "#bottleneck-table", lambda t: "4a" in t)
    assert "input 120 x 7 x 7" in text and "5x5" in text
    # Seed 004's full-size GoogLeNet: its 3a is the seed's example, 120 M multiply-adds without the reduction.
    module.click()
    page.get_by_role("option", name="3a", exact=True).click()
    page.locator("#bottleneck-variant").get_by_label("GoogLeNet as in seed 004", exact=False).check()
    text = _wait_text(page, "#bottleneck-table", lambda t: "120.42 M" in t)
    assert "12.44 M" in text and "input 192 x 28 x 28" in text
    _image_rendered(page, "#bottleneck-chart")
    _open(page, "bottleneck-numbers")  # the same numbers as /bottleneck's JSON
    assert _wait_text(page, "#bottleneck-json", lambda t: '"ratio"' in t and '"total_without"' in t)
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#bottleneck").screenshot(path=str(ARTIFACTS / "bottleneck.png"))

    _open(page, "filters-googlenet")
    grid = _image_rendered(page, "#filters-img-googlenet")
    assert grid["w"] > 200 and grid["h"] > 40
    page.locator("#filters-googlenet").screenshot(path=str(ARTIFACTS / "filters.png"))
    assert not errors, errors
    page.close()


def test_gradient_lab_runs_from_the_labs_tab(browser, running_app):
    if verify("mnist"):
        pytest.skip("MNIST not prepared")
    page, errors = _page(browser, running_app)
    page.get_by_role("tab", name="Labs").click()
    page.get_by_role("tab", name="Vanishing gradients").click()
    page.locator("#gradient-depth").get_by_label("8", exact=True).check()
    steps = page.locator("#gradient-steps input[type='number']")
    steps.fill("30")
    steps.press("Enter")
    page.locator("#gradient-start").click()
    _wait_text(page, "#gradient-status", lambda t: "step" in t or "Done" in t)  # a streamed update
    done = _wait_text(page, "#gradient-status", lambda t: "Done" in t)
    assert "30 steps" in done and "plain" in done and "residual" in done
    plot = _image_rendered(page, "#gradient-plot")
    assert plot["w"] > 400
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labs.png"), full_page=True)
    assert not errors, errors
    page.close()
