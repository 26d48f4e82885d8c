"""The Why? tab of the real app in a real browser (headless Chromium): every view shows real content for a
real digit, and clicking a test-set mistake makes it the input. Saves artifacts/why.png.

Needs Debian's ``chromium`` at /usr/bin/chromium (or $CHROMIUM) and the MNIST checkpoints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnndemo.train.checkpoints import list_pretrained

from test_browser import ARTIFACTS, _image_rendered, browser  # noqa: F401 - the shared Chromium fixture
from conftest import wait_until  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist" / "7_7_0000.png"
NUMBER = re.compile(r"\d")


def _wait(fn, what: str, timeout: float = 300):
    return wait_until(fn, what, timeout, interval=0.2)


def _src(page, selector: str) -> str | None:
    return page.evaluate("(sel) => document.querySelector(sel + ' img')?.src || null", selector)


def _compare_rows(page) -> list[list[str]]:
    return page.evaluate("""() => [...document.querySelectorAll('#why-compare table tbody tr')]
                              .map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))""")


def test_every_view_of_the_why_tab(browser, running_app):  # noqa: F811
    if sum(d == "mnist" for _a, d in list_pretrained()) < 5:
        pytest.skip("needs all five MNIST checkpoints")
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(300_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(running_app.url)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))  # a real test-set 7
    _image_rendered(page, "#sees")
    page.get_by_role("tab", name="Why?").click()

    # Compare: five networks, each with its answer, a confidence and numbers for size, cost and time.
    rows = _wait(lambda: (r := _compare_rows(page)) and len(r) == 5 and r, "the comparison table")
    for network, says, confidence, params, macs, ms in rows:
        assert says == "7", (network, says)
        assert confidence.endswith("%") and float(confidence[:-1]) > 50
        assert int(params.replace(",", "")) > 1000 and macs.endswith(" M") and float(ms) > 0
    assert "agree" in page.locator("#why-compare").inner_text()

    # Attribution: an overlay picture for each method, a different one each time.
    seen = set()
    for method in ("Grad-CAM", "Integrated gradients", "Occlusion"):
        if method != "Grad-CAM":
            page.get_by_label(method).check()
        src = _wait(lambda: (s := _src(page, "#why-saliency")) and s not in seen and s, f"the {method} overlay")
        seen.add(src)
        assert _image_rendered(page, "#why-saliency")["w"] == 224
        _wait(lambda: page.locator("#why-saliency-note").inner_text().startswith(method), f"the {method} caption")

    # Receptive field: the overlay and the table of receptive-field sides.
    assert _image_rendered(page, "#why-rf")["w"] == 224
    rf_text = _wait(lambda: (t := page.locator("#why-rf-note").inner_text()) and "sees a" in t and t,
                    "the receptive-field text")
    assert re.search(r"sees a \d+ x \d+ window", rf_text)

    # Mistakes: the confusion matrix, a page of misclassified test images, and their count.
    assert _image_rendered(page, "#why-confusion")["w"] > 300
    note = _wait(lambda: (t := page.locator("#why-mistakes-note").inner_text()) and "wrong" in t and t, "the count")
    assert NUMBER.search(note)
    thumbs = page.locator("#why-gallery img")
    _wait(lambda: thumbs.count() >= 10, "the gallery")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "why.png"), full_page=True)

    # Clicking a mistake makes it the input: what the network sees changes, and so does the comparison.
    before_sees, before_rows = _src(page, "#sees"), _compare_rows(page)
    thumbs.first.click()
    _wait(lambda: _src(page, "#sees") not in (None, before_sees), "the mistake as input")
    _wait(lambda: (r := _compare_rows(page)) and r != before_rows, "the comparison of the mistake")
    assert not errors, errors
    page.close()
