"""Issue #9, in-process: the limits a public Space needs, each checked where it is enforced (no server).

Decoding (pixel limit, format allow-list, EXIF after the shrink, PIL errors), canvas payloads, URL inputs,
per-visitor fine-tune limits, the bounded training queue, the CPU work budget and wall clock, a disconnect
that sets the stop flag, idle session models, the visitor key, and the queue / launch settings.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import os
import struct
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from cnndemo.app import serving
from cnndemo.app.inputs import BoundedSketchpad, ImageFile
from cnndemo.data import decode, framing
from cnndemo.data.datasets import raw_folder
from cnndemo.finetune import session as ft_session, store as ft_store
from cnndemo.finetune.runs import DeviceQueue, QueueFull, RunRegistry
from cnndemo.finetune.session import run_finetune
from cnndemo.finetune.spec import CPU_IMAGE_BUDGET, FineTuneSpec, check_budget

ROOT = Path(__file__).resolve().parent.parent
DIGIT = ROOT / "examples" / "mnist" / "7_7_0000.png"
HAVE_DATA = (raw_folder("mnist") / "train-images-idx3-ubyte").is_file()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="datasets missing: run `python -m cnndemo.data prepare`")
SMALL = dict(arch="residual_net", dataset="mnist", subset=1000, batch_size=64, eval_size=200, test_eval=False)


def png_bytes(size=(64, 64), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.open(DIGIT).convert(mode).resize(size).save(buf, "PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- decoding


def test_pil_pixel_limit_is_the_apps_own():
    assert Image.MAX_IMAGE_PIXELS == decode.MAX_PIXELS


def test_only_allowed_formats_are_opened(monkeypatch):
    """Image.open gets the allow-list; formats outside it (EPS, PDF, ICO ...) are refused as unreadable."""
    seen, data = [], png_bytes()
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **kw: seen.append(kw.get("formats")) or real(fp, *a, **kw))
    decode.open_image(data)
    assert seen == [decode.FORMATS] and "EPS" not in decode.FORMATS and "PDF" not in decode.FORMATS
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n"
    ico = io.BytesIO()
    real(DIGIT).convert("RGBA").save(ico, "ICO")  # a format PIL reads, but not on the list
    for data in (eps, ico.getvalue()):
        with pytest.raises(decode.InputError, match="not an image I can read"):
            decode.open_image(data)


def test_any_pil_failure_is_an_input_error(monkeypatch):
    data = png_bytes()
    for error in (struct.error("unpack"), IndexError("x"), EOFError(), ZeroDivisionError()):
        def boom(self, error=error):
            raise error
        monkeypatch.setattr(Image.Image, "load", boom)
        monkeypatch.setattr("PIL.ImageFile.ImageFile.load", boom)
        with pytest.raises(decode.InputError, match="not an image I can read"):
            decode.open_image(data)


def test_exif_orientation_is_applied_after_the_shrink(monkeypatch):
    im = Image.open(DIGIT).convert("RGB").resize((3000, 1500))
    exif = im.getexif()
    exif[decode.EXIF_ORIENTATION] = 6  # rotate 90 degrees
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    sizes = []
    real = framing.apply_orientation
    monkeypatch.setattr(framing, "apply_orientation", lambda img, o: sizes.append((img.size, o)) or real(img, o))
    framing.prepare(buf.getvalue(), "mnist")
    (size, turn), = sizes
    assert turn == 6 and max(size) <= decode.WORK_SIDE


def test_broken_exif_is_ignored():
    im = Image.open(DIGIT)
    im.getexif = lambda: (_ for _ in ()).throw(SyntaxError("bad exif"))
    assert decode.orientation(im) == 1


# --------------------------------------------------------------------------- canvas payloads


def test_canvas_layers_and_size_are_checked_before_decoding(tmp_path, monkeypatch):
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes((64, 64), "RGBA"))
    big = tmp_path / "big.png"
    Image.new("L", (3000, 10)).save(big)
    with pytest.raises(decode.InputError, match="2 layers; it may have at most 1"):
        decode.canvas_image({"background": None, "layers": [str(small)] * 2, "composite": None})
    loads = []
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", lambda self: loads.append(self) or None)
    with pytest.raises(decode.InputError, match="too large"):
        decode.check_canvas({"background": str(big), "layers": [], "composite": None})
    assert loads == []  # only the header was read
    with pytest.raises(decode.InputError, match="too large"):
        decode.canvas_image({"background": None, "layers": [np.zeros((10, 5000, 4), np.uint8)], "composite": None})


def test_bounded_sketchpad_refuses_before_gradio_decodes(tmp_path):
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    path = tmp_path / "layer.png"
    path.write_bytes(png_bytes((64, 64), "RGBA"))
    pad = BoundedSketchpad(type="numpy")
    assert pad.get_block_name() == "imageeditor" and ImageFile().get_block_name() == "image"
    two = EditorData(background=None, layers=[FileData(path=str(path))] * 2, composite=None)
    with pytest.raises(gr.Error, match="at most 1"):
        pad.preprocess(two)
    one = pad.preprocess(EditorData(background=None, layers=[FileData(path=str(path))], composite=None))
    assert one["layers"][0].shape[:2] == (64, 64)


@pytest.mark.parametrize("component", [ImageFile, BoundedSketchpad])
def test_url_inputs_are_refused_before_download(component):
    with pytest.raises(gr.Error, match="URLs"):
        asyncio.run(component().async_move_resource_to_block_cache("https://example.com/huge.png"))
    with pytest.raises(gr.Error, match="URLs"):
        component().move_resource_to_block_cache("http://127.0.0.1:9/x.png")


# --------------------------------------------------------------------------- fine-tuning


def test_one_run_per_visitor_whatever_the_session():
    registry = RunRegistry()
    stop = registry.begin_run("session-a", "ip:1.2.3.4")
    with pytest.raises(RuntimeError, match="one at a time per visitor"):
        registry.begin_run("session-b", "ip:1.2.3.4")  # a new session hash does not help
    registry.begin_run("session-c", "ip:5.6.7.8")
    registry.end_run("session-a", stop)
    registry.begin_run("session-b", "ip:1.2.3.4")


def test_training_queue_is_bounded():
    queue = DeviceQueue(max_runs=2)
    a, _b = queue.join("cpu"), queue.join("cpu")
    with pytest.raises(QueueFull, match="busy"):
        queue.join("cpu")
    queue.join("cuda")  # another device has its own line
    queue.leave(a)
    queue.join("cpu")


def test_cpu_work_budget_and_settings_checked_before_queueing():
    with pytest.raises(ValueError, match=f"at most {CPU_IMAGE_BUDGET:,} images"):
        check_budget(FineTuneSpec(epochs=10, subset=55000).validate(), "cpu")
    check_budget(FineTuneSpec(epochs=10, subset=55000).validate(), "cuda")  # the budget is for CPUs
    queue = DeviceQueue(max_runs=1)
    events = list(run_finetune(FineTuneSpec(epochs=10, subset=55000), "s", None, RunRegistry(), queue))
    if str(ft_session.pick_device()) == "cpu":
        assert [e["type"] for e in events] == ["error"] and "at most" in events[0]["message"]
        assert queue.length("cpu") == 0
    for bad, name in ((float("nan"), "epochs"), ("two", "epochs")):
        with pytest.raises(ValueError, match=name):
            FineTuneSpec(epochs=bad).validate()


@needs_data
def test_wall_clock_limit_stops_the_run_keeping_the_last_epoch(tmp_path):
    events = list(run_finetune(FineTuneSpec(start="scratch", epochs=3, **SMALL), "t", None, RunRegistry(),
                               DeviceQueue(), out_dir=tmp_path, max_seconds=0.0))
    assert any(e["type"] == "status" and "Time limit" in e["message"] for e in events)
    final = events[-1]
    assert final["type"] == "finished" and final["timed_out"] and final["outcome"].stopped
    assert final["outcome"].epochs_done < 3


@needs_data
def test_disconnect_sets_the_stop_flag_before_cleanup(monkeypatch):
    monkeypatch.setattr(ft_session, "STOP_FLAG_LINGER_S", 0.3)
    registry = RunRegistry()
    gen = run_finetune(FineTuneSpec(start="scratch", epochs=2, **SMALL), "d", None, registry, DeviceQueue())
    for event in gen:
        if event["type"] == "step":
            break
    stop = registry._runs["d"]
    gen.close()  # what Gradio does when the visitor goes away
    assert registry.running() == [] and stop.is_set()
    assert os.path.exists(stop.path), "a worker process must still be able to see the flag"
    time.sleep(1.0)
    assert not os.path.exists(stop.path), "the flag file is removed after the grace period"


def _outcome(folder: Path):
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    return ft_store.Outcome(SimpleNamespace(arch="residual_net", dataset="mnist"), torch.nn.Linear(1, 1), {},
                            str(folder / "model.safetensors"), str(folder), 0.1, 0.9, None, None, False, 1, 1.0, 1.0)


def test_session_models_live_while_used_and_go_when_idle(tmp_path):
    """The app's registry, not Gradio's state: a store lives while used, goes ttl after its last use or grace after
    its page closed, and its folders go with it; a flood of new sessions evicts nothing that holds a model."""
    now = [0.0]
    registry = ft_store.SessionRegistry(ttl_s=100, grace_s=10, max_holding=3, max_sessions=5, clock=lambda: now[0])
    for name in ("used", "idle", "closed"):
        store = registry.get(name)
        store.finished(_outcome(tmp_path / name))
        store.use()
    assert not registry.room_for("fourth") and registry.room_for("used"), "3 hold a model: no room for a 4th"
    for i in range(50):  # a flood of new, empty sessions
        registry.get(f"flood-{i}")
    assert all(s in registry for s in ("used", "idle", "closed")) and registry.holding() == 3
    assert len(registry) == 5, "empty stores are forgotten first beyond max_sessions"
    registry.closed("closed")
    now[0] = 50.0
    registry.get("used")  # any use restarts its time
    assert registry.sweep() >= 1 and "closed" not in registry and not (tmp_path / "closed").exists()
    now[0] = 120.0
    registry.sweep()
    assert "idle" not in registry and not (tmp_path / "idle").exists()
    assert "used" in registry and (tmp_path / "used").is_dir()
    assert registry.get("used").get("residual_net", "mnist") is not None
    registry.release("used")
    assert not (tmp_path / "used").exists()


def test_handlers_get_the_session_store_from_the_request():
    """with_session: Gradio injects the request (first), the handler's ``session`` is the registry's store."""
    import inspect

    from cnndemo.app import sessions

    seen = []

    def handler(a, session, b, evt: gr.SelectData):
        seen.append(session)
        return a, b

    wrapped = sessions.with_session(handler)
    assert list(inspect.signature(wrapped).parameters) == ["request", "a", "b", "evt"]
    request = SimpleNamespace(session_hash="s-1")
    assert wrapped(request, 1, 2, None) == (1, 2)
    assert seen[0] is sessions.SESSIONS.get("s-1") and "s-1" in sessions.SESSIONS

    def stream(x, session):
        yield x, session

    assert inspect.isgeneratorfunction(sessions.with_session(stream))
    assert next(sessions.with_session(stream)(request, 5)) == (5, sessions.SESSIONS.get("s-1"))
    sessions.SESSIONS.release("s-1")


def test_a_dropped_store_removes_its_folders(tmp_path):
    store = ft_store.SessionModels()
    store.finished(_outcome(tmp_path / "dropped"))
    del store
    gc.collect()
    assert not (tmp_path / "dropped").exists()


# --------------------------------------------------------------------------- serving


def test_visitor_key_is_not_chosen_by_the_client(monkeypatch):
    """Only Spaces' own proxy entry counts: an unsigned x-ip-token, or X-Forwarded-For off Spaces, is ignored."""
    request = SimpleNamespace(headers={"x-ip-token": "e30.eyJpcCI6ICI5LjkuOS45In0.sig",
                                       "x-forwarded-for": "9.9.9.9"},
                              client=SimpleNamespace(host="10.0.0.1"), session_hash="chosen-by-the-client")
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert serving.visitor_key(request) == "ip:10.0.0.1"  # off Spaces both headers could be forged: ignored
    monkeypatch.setenv("SPACE_ID", "someone/cnndemo")
    request.headers = {"x-ip-token": "e30.eyJpcCI6ICI5LjkuOS45In0.sig"}
    assert serving.visitor_key(request) == "ip:10.0.0.1"  # a token nobody can verify here buys nothing
    request.headers = {"x-forwarded-for": "6.6.6.6, 7.7.7.7"}  # the client wrote 6.6.6.6; the proxy appended 7.7.7.7
    assert serving.visitor_key(request) == "ip:7.7.7.7"
    assert serving.visitor_key(None) == "local"


def test_uvicorn_trusts_no_forwarded_headers_unless_told(monkeypatch):
    monkeypatch.delenv("CNNDEMO_TRUSTED_PROXIES", raising=False)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert serving.trust_proxies() == "" and os.environ["FORWARDED_ALLOW_IPS"] == ""
    monkeypatch.setenv("CNNDEMO_TRUSTED_PROXIES", "10.1.2.3")
    assert serving.trust_proxies() == "10.1.2.3" and os.environ["FORWARDED_ALLOW_IPS"] == "10.1.2.3"


def test_queue_is_configured_explicitly_also_on_zerogpu(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # Gradio would use max_size=1 here
    with gr.Blocks() as demo:
        gr.Button().click(lambda: None)
    serving.configure_queue(demo)
    assert demo._queue.max_size == serving.QUEUE_MAX_SIZE >= 50
    assert demo._queue.default_concurrency_limit == serving.DEFAULT_CONCURRENCY


def test_launch_settings():
    from cnndemo.app.layout import launch_kwargs

    kw = launch_kwargs()
    assert kw["show_error"] is True and kw["state_session_capacity"] == serving.STATE_SESSION_CAPACITY
    assert kw["max_file_size"] == decode.MAX_UPLOAD_BYTES
    from gradio.route_utils import FnIndexInferError

    assert FnIndexInferError in kw["app_kwargs"]["exception_handlers"]
