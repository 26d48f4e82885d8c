"""Real browser (Debian's headless Chromium via Playwright): start a short fine-tune and watch the curve grow.

Screenshot: ``$CNNDEMO_ARTIFACTS`` (default ``artifacts/``) ``/finetune_tab.png``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from cnndemo.data.datasets import raw_folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_standalone import StubModels, serve_standalone  # noqa: E402

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("CNNDEMO_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no Chromium: apt-get install -y chromium"),
    pytest.mark.skipif(not (raw_folder("mnist") / "train-images-idx3-ubyte").is_file(), reason="MNIST missing"),
]
ARTIFACTS = Path(os.environ.get("CNNDEMO_ARTIFACTS", Path(__file__).resolve().parent.parent / "artifacts"))


@pytest.fixture(scope="module")
def url():
    for address, _ in serve_standalone(StubModels()):
        yield address


def test_browser_starts_finetune_and_sees_curve_grow(url):
    with playwright_api.sync_playwright() as p:
        browser, page = open_page(p)
        page.goto(url, wait_until="load")
        page.wait_for_selector("#finetune-start", timeout=60000)
        page.get_by_role("tab", name="Fine-tune").click()
        # 3 short epochs on 4,000 images: long enough to see several curve updates
        set_slider(page, "#finetune-epochs", 3)
        set_slider(page, "#finetune-subset", 4000)
        page.locator("#finetune-start").click()

        curve = page.locator("#finetune-curves img")
        sources: list[str] = []
        rows: list[int] = []
        deadline = time.time() + 120
        while time.time() < deadline:
            if curve.count():
                src = curve.first.get_attribute("src") or ""
                if src and (not sources or src != sources[-1]):
                    sources.append(src)
            rows.append(page.locator("#finetune-accuracies tr").count())
            if "Done" in page.locator("#finetune-status").inner_text():
                break
            time.sleep(0.2)
        status = page.locator("#finetune-status").inner_text()
        assert "Done" in status, status
        page.wait_for_timeout(500)
        if curve.count() and curve.first.get_attribute("src") not in sources:
            sources.append(curve.first.get_attribute("src"))
        # the curve image was redrawn several times while training ran, and the accuracy table grew row by row
        assert len(sources) >= 3, f"curve redrawn only {len(sources)} times"
        assert len({r for r in rows if r}) >= 3 and max(rows) == 1 + 1 + 3  # header + before + 3 epochs
        assert "after epoch 3" in page.locator("#finetune-accuracies").inner_text()
        assert page.locator("#finetune-features img").count() >= 5  # example + before + 3 epochs
        assert page.locator("#finetune-confusion img").count() == 1
        assert "Before → after" in page.locator("#finetune-comparison").inner_text()
        page.locator("#finetune-use").click()
        page.wait_for_function("document.querySelector('#finetune-use-msg').innerText.includes('now use')")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "finetune_tab.png"), full_page=True)
        browser.close()


def open_page(p):
    """Headless Debian Chromium and a tall page: ``(browser, page)``."""
    browser = p.chromium.launch(executable_path=CHROMIUM,
                                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    return browser, browser.new_page(viewport={"width": 1400, "height": 1800})


def set_slider(page, selector: str, value: int) -> None:
    """Type a value into a Gradio slider's number box."""
    box = page.locator(f"{selector} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    assert page.locator(f"{selector} input[type=range]").input_value() == str(value)


def test_real_app_fine_tune_then_use_it_in_the_resnet_tab(running_app):
    """The whole journey in the real app: fine-tune the course residual net, use it, see it in the ResNet tab."""
    with playwright_api.sync_playwright() as p:
        browser, page = open_page(p)
        page.goto(running_app.url, wait_until="load")
        page.get_by_role("tab", name="Fine-tune").click()
        page.wait_for_selector("#finetune-start", state="visible", timeout=60000)
        set_slider(page, "#finetune-epochs", 1)
        set_slider(page, "#finetune-subset", 2000)
        page.locator("#finetune-start").click()
        page.wait_for_function("document.querySelector('#finetune-status').innerText.includes('Done')",
                               timeout=180000)
        page.locator("#finetune-use").click()
        page.wait_for_function("document.querySelector('#finetune-use-msg').innerText.includes('now use')")
        page.get_by_role("tab", name="ResNet").click()
        page.get_by_label("Course residual net", exact=False).first.check()
        note = page.locator(".model-note:visible").first
        deadline = time.time() + 60
        while "fine-tuned in this session" not in note.inner_text() and time.time() < deadline:
            time.sleep(0.2)
        assert "fine-tuned in this session" in note.inner_text(), note.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app_after_finetune.png"), full_page=True)
        browser.close()
