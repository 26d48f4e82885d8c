"""Issue 18's races, made deterministic with threads: the canvas's answered seq never goes backwards, and
activation capture (receptive field, Grad-CAM) on a model shared by concurrent requests sees only its own pass.

Each race is forced, not hoped for: a thread is paused at the worst moment (inside the handler, inside the
forward pass) while the other thread does what a second request of the same model or session would do.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import gradio as gr
import numpy as np
import pytest
import torch
from gradio.helpers import special_args

from cnndemo.app.canvas import DrawingCanvas, on_draw
from cnndemo.app.canvas_seq import NewestSeq
from cnndemo.catalog import CLASSES, MEAN_STD
from cnndemo.insight.attribution import attribute
from cnndemo.insight.receptive_field import receptive_field
from cnndemo.models import build_model

WAIT_S = 10.0


def _payload(seq: int) -> str:
    """An 8 x 8 crop whose ink level tells the handler which drawing it got (100 + seq)."""
    alpha = base64.b64encode(bytes([100 + seq]) * 64).decode()
    return json.dumps({"v": 1, "seq": seq, "final": True, "w": 112, "h": 112, "x": 50, "y": 50, "cw": 8, "ch": 8,
                       "alpha": alpha})


class Session:
    """One browser session's view of the draw event: Gradio's state value, written by each answer that sets it."""

    def __init__(self, handler, state, session_hash: str):
        self.handler, self.state, self.hash, self.value = handler, state, session_hash, 0

    def call(self, seq: int, read: int | None = None) -> dict:
        """Run the real handler as Gradio does: the state as read when the event started, the request injected."""
        inputs, *_ = special_args(self.handler, [_payload(seq), self.value if read is None else read],
                                  gr.Request(session_hash=self.hash))
        out = self.handler(*inputs)
        if self.state in out:
            self.value = out[self.state]
        return out


def _canvas_app(fn):
    with gr.Blocks() as demo:
        canvas = DrawingCanvas()
        text = gr.Textbox()
        on_draw(canvas, fn, [text])
    block_fn = next(f for f in demo.fns.values() if f.api_name == "draw")
    state = next(b for b in block_fn.inputs if isinstance(b, gr.State))
    return block_fn.fn, state, text


def test_an_older_drawing_answered_last_never_moves_the_newest_seq_back():
    """Drawing 1 starts first and finishes last, after drawing 2 (two events of one session at once)."""
    newer_done = threading.Event()
    answered = []

    def fn(_request, alpha):
        seq = int(alpha.max()) - 100
        if seq == 1:
            assert newer_done.wait(WAIT_S)
        answered.append(seq)
        return f"drawing {seq}"

    handler, state, text = _canvas_app(fn)
    session = Session(handler, state, "race-1")
    results = {}
    older = threading.Thread(target=lambda: results.__setitem__(1, session.call(1, read=0)))
    older.start()
    results[2] = session.call(2, read=0)  # both read the state before either wrote it
    newer_done.set()
    older.join(WAIT_S)
    assert session.value == 2, f"the session's newest answered drawing went back to {session.value}"
    assert results[1].get(text) is None, "the older drawing's answer overwrote the newer one"
    assert session.call(2).get(text) is None  # a repeat of the newest is skipped, not recomputed
    assert session.call(3).get(text) == "drawing 3"


def test_sessions_do_not_share_their_newest_seq():
    handler, state, text = _canvas_app(lambda _request, alpha: f"drawing {int(alpha.max()) - 100}")
    a, b = Session(handler, state, "a"), Session(handler, state, "b")
    assert a.call(5).get(text) == "drawing 5"
    assert b.call(2).get(text) == "drawing 2"  # b's seq is its own
    assert a.call(4).get(text) is None


def test_the_newest_seq_table_is_bounded_and_forgets_idle_sessions():
    seqs = NewestSeq(capacity=3, idle_s=60)
    for i in range(5):
        assert seqs.claim(f"s{i}", 1) is None
    assert len(seqs) == 3 and seqs.newest("s0") == 0 and seqs.newest("s4") == 1  # least recently used went
    assert seqs.claim("s4", 1) == 1 and seqs.claim("s4", 2) is None and seqs.still_newest("s4", 2)
    idle = NewestSeq(idle_s=0.0)
    idle.claim("a", 5)
    time.sleep(0.01)
    idle.claim("b", 1)
    assert idle.newest("a") == 0 and len(idle) == 1


def _shared_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(arch, *MEAN_STD["mnist"]).eval()


def _interfere(model: torch.nn.Module, pause_at: str, work, other: torch.Tensor, nth: int = 1):
    """Run ``work()`` in this thread; when its ``nth`` forward pass reaches ``pause_at``, another thread runs a
    whole forward pass of the same model on ``other`` before this one goes on. Returns what ``work()`` returned."""
    me, go, gone = threading.get_ident(), threading.Event(), threading.Event()
    passes = []

    def pause(_m, _a, _o):
        if threading.get_ident() == me and not go.is_set():
            passes.append(1)
            if len(passes) == nth:
                go.set()
                gone.wait(WAIT_S)

    def second_request():
        go.wait(2.0)  # a capture that is not on the shared model never pauses: run anyway
        with torch.no_grad():
            model(other)
        gone.set()

    handle = model.get_submodule(pause_at).register_forward_hook(pause)
    thread = threading.Thread(target=second_request)
    thread.start()
    try:
        return work()
    finally:
        thread.join(WAIT_S)
        handle.remove()


@pytest.mark.parametrize("arch,layer,pause_at", [("vgg11", "net.features.block1", "net.classifier"),
                                                 ("resnet18", "net.layer1.0", "net.fc")])
def test_receptive_field_of_a_shared_model_sees_only_its_own_pass(arch, layer, pause_at):
    model = _shared_model(arch)
    torch.manual_seed(1)
    x, other = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    alone = receptive_field(model, x, layer, 3, 4)
    raced = _interfere(model, pause_at, lambda: receptive_field(model, x, layer, 3, 4), other)
    assert torch.equal(raced.effective, alone.effective) and raced.box == alone.box


@pytest.mark.parametrize("arch,pause_at", [("vgg11", "net.classifier"), ("resnet18", "net.fc")])
def test_gradcam_of_a_shared_model_sees_only_its_own_pass(arch, pause_at):
    model = _shared_model(arch)
    torch.manual_seed(2)
    x, other = torch.rand(1, 1, 28, 28), torch.rand(1, 1, 28, 28)
    alone = attribute(model, x, "gradcam", CLASSES["mnist"], target=3)
    raced = _interfere(model, pause_at, lambda: attribute(model, x, "gradcam", CLASSES["mnist"], target=3), other,
                        nth=2)  # the first pass is the prediction, the second Grad-CAM's
    assert torch.equal(raced.attribution, alone.attribution)


def test_two_threads_on_one_model_each_get_their_own_bit_identical_field():
    """No pausing: two threads compute receptive fields of different inputs on one model, 20 times each."""
    model = _shared_model("resnet18")
    torch.manual_seed(3)
    xs = [torch.rand(1, 1, 28, 28) for _ in range(2)]
    alone = [receptive_field(model, x, "net.layer2.0", 1, 2).effective for x in xs]
    problems: list[str] = []

    def work(i: int):
        for _ in range(20):
            try:
                got = receptive_field(model, xs[i], "net.layer2.0", 1, 2).effective
            except Exception as exc:  # noqa: BLE001 - a mixed-up capture shows as an autograd error too
                problems.append(f"thread {i}: {type(exc).__name__}: {exc}")
                return
            if not torch.equal(got, alone[i]):
                problems.append(f"thread {i}: another input's field")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert problems == []
    assert not np.array_equal(alone[0].numpy(), alone[1].numpy())


@pytest.mark.parametrize("arch", ["vgg11", "googlenet", "resnet18", "inception_net", "residual_net"])
def test_a_private_view_shares_the_weights_and_answers_bit_identically(arch):
    from cnndemo.inspection.hooks import private_view

    model = _shared_model(arch)
    seen = []
    model.net.register_forward_hook(lambda *_: seen.append(1))
    view = private_view(model)
    assert all(a is b for a, b in zip(model.parameters(), view.parameters()))
    assert all(a is b for a, b in zip(model.buffers(), view.buffers()))
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(view(x), model(x))
    assert seen == [1], "the model's hooks stay on the model"
