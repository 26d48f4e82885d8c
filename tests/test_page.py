"""What the visitor's page carries (issue #8, page load): the real app over HTTP and in a real browser.

The endpoints' inputs and outputs live on their own page, so the visitor's page does not carry them, while API
clients still see every endpoint. The components of non-selected tabs and closed accordions are hidden when the
page loads (Gradio neither fetches their code nor draws them) and appear when their tab or accordion is opened;
the Why?, Fine-tune and Labs tabs are built when first opened, and the canvas keeps working after that.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import wait_until
from test_browser import browser  # noqa: F401 - the module's Chromium (skips without it or a VGG checkpoint)

ENDPOINTS = {"/classify", "/feature_maps", "/inception_branches", "/residual_blocks", "/compare", "/saliency",
             "/receptive_field", "/misclassified", "/bottleneck", "/finetune", "/finetune_stop", "/finetune_use",
             "/finetune_forget", "/gradient_flow", "/teach"}
# Component types whose browser code is large (a video player, a code editor, a canvas engine, chart code) and that
# the first screen does not show.
HEAVY = {"gallery", "code", "imageeditor", "plot", "file", "json"}


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def configs(running_app):
    """(the full config API clients read, the config of the visitor's page)."""
    return _json(running_app.url + "config"), _json(running_app.url + "config?page=")


def test_endpoints_are_not_on_the_visitors_page_but_clients_see_them(running_app, configs):
    from gradio_client import Client

    full, page = configs
    named = {d["api_name"]: d for d in full["dependencies"] if d.get("api_name")}
    assert ENDPOINTS <= {f"/{n}" for n in named}
    on_page = {c["id"] for c in page["components"]}
    api_only = {"classify", "feature_maps", "inception_branches", "residual_blocks", "compare", "saliency",
                "receptive_field", "misclassified", "bottleneck"}
    for name in api_only:
        ids = set(named[name]["inputs"]) | set(named[name]["outputs"])
        assert not ids & on_page, f"/{name}'s components are on the visitor's page"
    assert len(page["components"]) < len(full["components"]) - 30
    listed = set(Client(running_app.url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert ENDPOINTS <= listed


def test_first_screen_starts_no_heavy_component(configs):
    _full, page = configs
    visible = {c["type"] for c in page["components"] if c.get("props", {}).get("visible") is True}
    assert not visible & HEAVY, f"visible at page load: {sorted(visible & HEAVY)}"
    assert {"html", "label", "image", "dropdown", "radio"} <= visible  # the canvas, the VGG tab's prediction and views


def test_the_page_parses_no_markdown_and_carries_few_events(configs):
    """The page's texts arrive as HTML (cnndemo.app.prose), so no gr.Markdown and its browser-side parser; and every
    event costs page load (Gradio's browser code walks each one for every component, see BENCHMARKS.md)."""
    _full, page = configs
    assert "markdown" not in {c["type"] for c in page["components"]}
    note = next(c for c in page["components"] if c.get("props", {}).get("elem_id") == "input-note")
    assert note["props"]["value"].strip().startswith("<p>")  # rendered on the server
    assert len(page["dependencies"]) <= 28, f"{len(page['dependencies'])} events on the visitor's page (27 today)"


@pytest.fixture(scope="module")
def page(browser, running_app):  # noqa: F811 - the browser fixture is test_browser's
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.goto(running_app.url)
    pg.wait_for_selector("#canvas canvas", timeout=300_000)
    yield pg
    pg.close()


def _shown(page, selector: str) -> bool:
    return page.locator(selector).count() > 0 and page.locator(selector).first.is_visible()


def test_no_navbar_for_the_endpoint_page(page):
    # The endpoint page is for API clients: Gradio would otherwise show a navbar ("Home") on the visitor's page.
    # (Gradio draws it while the page starts and removes it once the navbar component has loaded)
    wait_until(lambda: page.locator("nav").count() == 0, "no navbar once the page has loaded", 30)
    page.wait_for_timeout(500)
    assert page.locator("nav").count() == 0


def test_deferred_tabs_and_accordions_appear_when_opened(page):
    assert not _shown(page, "#finetune-features") and not _shown(page, "#finetune-start")
    page.get_by_role("tab", name="Fine-tune").click()
    wait_until(lambda: _shown(page, "#finetune-start") and _shown(page, "#finetune-features"),
               "the Fine-tune tab's button and gallery", 120)
    page.get_by_role("tab", name="VGG").click()
    code = ".cm-content"
    assert not _shown(page, code)
    page.get_by_text("Architecture (torchinfo, 1 x 1 x 28 x 28 input)").first.click()
    text = wait_until(lambda: _shown(page, code) and "Layer (type" in page.locator(code).first.inner_text(),
                      "the architecture summary (torchinfo's table) in a code view", 120)
    assert text


def test_tabs_built_when_opened_leave_the_canvas_working(page):
    """Fine-tune, Labs and Why? are built on first opening (gr.render). Their events must not take over the page's:
    after opening them, drawing still answers in the VGG tab, and the Why? tab follows the drawing."""
    from test_browser import SEVEN, label, settled, stroke_down

    for name, ready in (("Fine-tune", "#finetune-start"), ("Labs", "#gradient-start"), ("Why?", "#why-compare")):
        page.get_by_role("tab", name=name).click()
        wait_until(lambda ready=ready: _shown(page, ready), f"the {name} tab's contents", 120)
    before = page.locator("#why-compare").inner_text()
    stroke_down(page, SEVEN)
    page.mouse.up()
    settled(page)
    wait_until(lambda: "| VGG-11 |" in page.locator("#why-compare").inner_text() or
               page.locator("#why-compare table").count() > 0, "the Why? comparison of the drawing", 120)
    assert page.locator("#why-compare").inner_text() != before
    page.get_by_role("tab", name="VGG").click()
    stroke_down(page, SEVEN)
    page.mouse.up()
    wait_until(lambda: label(page) != "", "a prediction in the VGG tab after drawing", 120)
    assert settled(page) == "7"


def test_an_example_is_classified_and_the_shelf_follows_the_dataset(page, running_app):
    """Clicking an example puts it in the upload box and the VGG tab shows what /classify answers for that file
    (some examples are hard ones the model gets wrong); switching the dataset shows that dataset's own shelf and
    the first-layer filters of that dataset's model."""
    from pathlib import Path

    from gradio_client import Client, handle_file
    from test_browser import label

    from cnndemo.app.examples import example_files

    page.get_by_role("tab", name="VGG").click()
    shelf = page.locator("button.gallery-item:visible")
    wait_until(lambda: shelf.count() == 10, "ten examples on the shelf", 60)
    first = shelf.nth(0).locator("img").get_attribute("src")
    assert first.startswith("data:image/png;base64,"), "the thumbnails are inline, with no server path"
    assert shelf.nth(3).locator("img").get_attribute("alt") == "Example: 3", \
        "one example per class, in class order: the fourth is a 3"
    path = Path(example_files("mnist")[3])
    assert path.name.startswith("3_")
    expected = Client(running_app.url, verbose=False).predict(handle_file(str(path)), "vgg11", "mnist",
                                                               api_name="/classify")["label"]
    shelf.nth(3).click()
    wait_until(lambda: label(page) == expected, f"the example classified as {expected} in the VGG tab", 120)
    assert page.get_by_role("tab", name="Upload", selected=True).count() == 1
    page.locator("#filters-vgg > button").first.click()  # the first convolution's kernels: the dataset's model's
    kernels = page.locator("#filters-img-vgg img")
    mnist_kernels = wait_until(lambda: kernels.count() and kernels.first.get_attribute("src"), "VGG's filters", 60)
    page.locator("#dataset").get_by_label("Fashion-MNIST clothing").check()
    wait_until(lambda: shelf.count() == 10 and shelf.nth(0).locator("img").get_attribute("src") != first,
               "the clothing examples", 60)
    wait_until(lambda: kernels.first.get_attribute("src") != mnist_kernels, "the clothing model's filters", 60)
    page.locator("#filters-vgg > button").first.click()
    page.locator("#dataset").get_by_label("MNIST digits").check()
    page.get_by_role("tab", name="Draw").click()
