"""Issue #18, per visitor, over HTTP against the real app (its own instance with small budgets).

Each case failed on main before the guard and the session registry (see the issue's note for the figures):
spoofed forwarded headers bought a second fine-tune, unlimited 1 MB uploads went in, 520 cheap requests evicted
a fine-tuned model, and new sessions were never refused. The order matters: the session cap is used up last.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
pytest.importorskip("gradio_client")

from benchmarks.loadtest import visitor_faults as vf  # noqa: E402
from benchmarks.loadtest.app_control import AppProcess  # noqa: E402

pytestmark = pytest.mark.skipif(not list((ROOT / "checkpoints").glob("*.safetensors")), reason="no checkpoints")


@pytest.fixture(scope="module")
def url():
    with AppProcess("app.py", env=vf.APP_ENV) as app:
        yield app.url


@pytest.mark.parametrize("case", vf.CASES, ids=lambda f: f.__name__)
def test_one_visitor_cannot_spoil_the_space(url, case):
    ok, detail = case(url)
    print(f"\n{case.__name__}: {detail}")
    assert ok, detail
