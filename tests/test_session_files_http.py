"""Issue 18: every file the app writes is in Gradio's cache (swept) or goes with its session, over HTTP.

The real app runs with its own temporary folder (``TMPDIR``) and Gradio's cache inside it; a browser session
clicks a test-set mistake, adds a teach-lab drawing and fine-tunes until it stops, then closes (its heartbeat
ends; ``GRADIO_IS_E2E_TEST`` makes Gradio drop a closed session's state after 1 s instead of an hour). Nothing the
session made may stay outside Gradio's cache.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
pytest.importorskip("gradio_client")

from benchmarks.loadtest.app_control import AppProcess  # noqa: E402
from benchmarks.loadtest.browser_session import BrowserSession  # noqa: E402
from cnndemo.app.insight_tab import TAB_ID  # noqa: E402
from cnndemo.data.datasets import raw_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not list((ROOT / "checkpoints").glob("*.safetensors"))
                                or not (raw_folder("mnist") / "train-images-idx3-ubyte").is_file(),
                                reason="no checkpoints or no MNIST")
# arch, dataset, start, epochs, lr, batch, optimizer, subset, augment, freeze (then the session store): stopped early
LONG_RUN = ["residual_net", "mnist", "scratch", 3, 3e-3, 64, "adam", 20000, False, False]


def _outside_cache(tmp: Path) -> set[str]:
    cache = tmp / "gradio"
    return {str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file() and cache not in p.parents}


def _drawing() -> bytes:
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(140, 40), (140, 240)], fill=(0, 0, 0, 255), width=16)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apptmp")
    env = {"TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(tmp / "gradio"), "GRADIO_IS_E2E_TEST": "1",
           "CNNDEMO_SESSION_GRACE_S": "1"}  # a closed page's models and files go a second later (default 5 min)
    with AppProcess("app.py", env=env) as running:
        running.tmp = tmp
        yield running


def _click_a_mistake(s: BrowserSession) -> None:
    s.open_tab(TAB_ID)
    shown = s.run(s.dependency(s.component("why-gallery"), "select"), [None],
                  event_data={"index": 0, "value": None, "selected": True})
    assert shown["success"], shown


def _add_a_drawing(s: BrowserSession) -> None:
    s.open_tab("labs-tab")
    image = s.upload("drawing.png", _drawing())
    add = s.dependency(s.component("teach-add"), "click")
    value = {"background": None, "layers": [image], "composite": image, "id": None}
    added = s.run(add, [value, "1", None, "[]"])
    assert added["success"], added


def _fine_tune_and_stop(s: BrowserSession) -> None:
    """Start a long fine-tune and press Stop as soon as it trains (both on the session's one message stream)."""
    start = next(d for d in s.dependencies if d.get("api_name") == "finetune")
    stop = next(d for d in s.dependencies if d.get("api_name") == "finetune_stop")
    stopped = []

    def on_message(msg: dict, ids: list) -> None:
        if not stopped and msg.get("msg") == "process_generating" and '"training"' in json.dumps(msg):
            stopped.append(1)
            ids.append(s.join(stop, []))

    (result,) = s.run_together([(start, LONG_RUN, None)], timeout=300, on_message=on_message)
    assert result["success"] and stopped, str(result)[:300]


def _left_after(app, before: set[str], wait_s: float = 20) -> set[str]:
    t0, left = time.monotonic(), set()
    while time.monotonic() - t0 < wait_s:
        left = _outside_cache(app.tmp) - before
        if not left:
            break
        time.sleep(0.5)
    return left


def test_a_clicked_mistake_and_a_teach_drawing_write_only_into_gradios_cache(app):
    before = _outside_cache(app.tmp)
    s = BrowserSession(app.url)
    try:
        _click_a_mistake(s)
        _add_a_drawing(s)
        written = _outside_cache(app.tmp) - before
        assert written == set(), f"written outside Gradio's cache: {sorted(written)[:5]}"
    finally:
        s.close()


def test_a_stopped_fine_tunes_folder_goes_when_its_session_ends(app):
    before = _outside_cache(app.tmp)
    s = BrowserSession(app.url)
    try:
        _fine_tune_and_stop(s)
        assert _outside_cache(app.tmp) - before, "the stopped run's checkpoint is kept while the session lasts"
    finally:
        s.close()
    left = _left_after(app, before)
    assert not left, f"left behind after the session ended: {sorted(left)[:5]}"
