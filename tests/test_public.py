"""Issue #9, short form: load, ZeroGPU queue, soak and every fault case against the real app over HTTP.

The harness is ``benchmarks/loadtest`` (``python -m benchmarks.loadtest --full`` is the benchmark).
Fault cases marked ``known_failing_today`` in the catalogue, and the ZeroGPU queue check, xfail
strictly: when the server is fixed they XPASS and fail, so the marks must then be removed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
pytest.importorskip("gradio_client")

from benchmarks.loadtest import concurrent_faults, faults, load, soak, zerogpu_queue  # noqa: E402
from benchmarks.loadtest.app_control import AppProcess  # noqa: E402

pytestmark = pytest.mark.skipif(not list((ROOT / "checkpoints").glob("*.safetensors")), reason="no checkpoints")


@pytest.fixture(scope="module")
def app():
    with AppProcess("app.py") as running:
        running.reference = faults.reference_answers(running.url)  # before any load or fault
        yield running


@pytest.fixture(scope="module")
def ctx(app, tmp_path_factory):
    from gradio_client import Client

    return faults.Ctx(app.url, tmp_path_factory.mktemp("badfiles"), Client(app.url, verbose=False))


def test_load_with_two_finetunes_streaming(app):
    with AppProcess(["-m", "benchmarks.loadtest.bare"]) as bare:
        result = load.run(app.url, clients=10, requests=4, finetunes=2, bare_url=bare.url, deadline_s=120, every=3)
    print("\n" + result.report())
    assert result.app.requests == 40 and result.bare.requests == 40
    assert result.problems() == []


def test_soak_memory(app):
    result = soak.run(app.url, app.pid, requests=300, clients=4, deadline_s=240, warmup=0.5)
    print("\n" + result.report())
    assert result.errors == [] and result.requests == 300
    assert result.slope_mb_per_1000 < 50  # 300 requests show only gross leaks; the full form checks the trend


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.name, marks=[pytest.mark.xfail(
    strict=True, reason=f"known failing today: {f.today}")] if f.known_failing_today else [])
    for f in faults.CATALOGUE])
def test_fault_gets_a_clear_answer(ctx, fault):
    reply, why = faults.run_fault(fault, ctx)
    assert why is None, why


def test_healthy_and_bit_identical_afterwards(app):
    assert app.alive()
    assert faults.reference_answers(app.url) == app.reference


@pytest.mark.xfail(zerogpu_queue.KNOWN_FAILING_TODAY, strict=True,
                   reason="Gradio sets max_size=1 on ZeroGPU unless the app sets it: visitors get 'Queue is full'")
def test_zerogpu_all_12_visitors_served_while_a_finetune_runs():
    result = zerogpu_queue.run(visitors=12)
    print("\n" + result.report())
    assert result.training
    assert result.served == 12, result.refused[:3]


def test_a_full_queue_says_busy_at_once_and_serves_the_rest():
    result = zerogpu_queue.busy(visitors=12)
    print("\n" + result.report())
    assert result.other == []
    # The queue holds 2 waiting events, so at least 2 are served. A third fits only if the worker has already taken
    # the first out of the queue when the others arrive; on a loaded machine (CI) all 12 can arrive before it does.
    assert result.served >= 2 and result.busy and result.served + len(result.busy) == 12


def test_a_disconnect_stops_the_run_and_frees_the_device(app):
    freed, seconds, detail = concurrent_faults.disconnect_frees_the_device(app.url)
    print(f"\ndevice free {seconds:.1f} s after the disconnect; {detail}")
    assert freed, detail
