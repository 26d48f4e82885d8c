"""The fine-tune core (cnndemo.finetune*): it trains through the shared loop, stops, keeps sessions apart,
never touches the pretrained weights, writes loadable checkpoints, and runs under a (fake) ZeroGPU."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

import cnndemo.finetune.job as ft
from cnndemo.finetune import session as ft_session, spec as ft_spec
from cnndemo.finetune.store import SessionModels
from cnndemo.train.checkpoints import load_checkpoint, read_meta
from cnndemo.data.datasets import DataMissingError, raw_folder
from cnndemo.finetune.spec import FineTuneSpec, StartPoint
from cnndemo.finetune.session import run_finetune
from cnndemo.finetune.runs import DeviceQueue, RunRegistry, StopSignal
from cnndemo.train.evaluation import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_standalone import StubModels  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HAVE_DATA = all((raw_folder(d) / "train-images-idx3-ubyte").is_file() for d in ("mnist", "fashion_mnist"))
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="datasets missing: run `python -m cnndemo.data prepare`")

# Small and fast: the course residual net on 2,000 images, 500 held-out images.
SMALL = dict(arch="residual_net", dataset="mnist", subset=2000, batch_size=64, eval_size=500, test_eval=False)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tests run beside other CPU work: one intra-op thread avoids oversubscription stalls."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def drive(events, on_event=None) -> list[dict]:
    """Collect all events of a run (``on_event`` sees each as it arrives)."""
    out = []
    for ev in events:
        out.append(ev)
        if on_event:
            on_event(ev)
    return out


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@needs_data
def test_shared_loop_trains_from_scratch(monkeypatch, tmp_path):
    """Loss falls and held-out accuracy rises, and it is cnndemo.train.train_iter doing the training."""
    calls = []
    real = ft.train_iter

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "train_iter", spy)
    events = drive(run_finetune(FineTuneSpec(start="scratch", epochs=2, **SMALL), "s", None, RunRegistry(),
                                DeviceQueue(), out_dir=tmp_path))
    assert [e["type"] for e in events][-1] == "finished", events[-1]
    assert len(calls) == 1 and calls[0]["keep"] == "last"
    steps = [e for e in events if e["type"] == "step"]
    epochs = [e for e in events if e["type"] == "epoch"]
    start = next(e for e in events if e["type"] == "start")
    assert len(steps) >= 8 and len(epochs) == 2
    assert steps[-1]["loss"] < 0.5 * steps[0]["loss"]
    assert start["acc_before"] < 0.3 < 0.8 < epochs[-1]["val_acc"]
    assert epochs[1]["val_acc"] >= epochs[0]["val_acc"] - 0.02
    outcome = events[-1]["outcome"]
    assert outcome.acc_after == pytest.approx(epochs[-1]["val_acc"])
    assert outcome.confusion_after.sum() == 500
    # one feature-map snapshot of the fixed example per epoch, plus the one before training
    assert start["features"].ndim == 3 and all(e["features"].shape == start["features"].shape for e in epochs)
    assert not all((e["features"] == start["features"]).all() for e in epochs)


@needs_data
def test_stop_ends_run_and_keeps_last_completed_epoch(tmp_path):
    registry = RunRegistry()
    stop_time: list[float] = []

    def on_event(ev):
        if ev["type"] == "step" and ev["epoch"] == 2 and not stop_time:
            stop_time.append(time.perf_counter())
            assert registry.request_stop("s")

    events = drive(run_finetune(FineTuneSpec(start="scratch", epochs=4, **SMALL), "s", None, registry, DeviceQueue(),
                                out_dir=tmp_path), on_event)
    done_at = time.perf_counter()
    outcome = events[-1]["outcome"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert outcome.stopped and outcome.epochs_done == 1 and len(epochs) == 1
    assert outcome.acc_after == pytest.approx(epochs[0]["val_acc"])  # the epoch-1 weights were kept
    assert outcome.meta["epochs"] == 1 and outcome.meta["finetune"]["stopped"] is True
    assert done_at - stop_time[0] < 2.0, "Stop must end the run within a second or two"
    assert not registry.request_stop("s"), "the run is over: nothing left to stop"


def test_stop_while_waiting_in_queue_cancels():
    queue, registry = DeviceQueue(), RunRegistry()
    blocker = queue.join(str(ft_session.pick_device()))
    events = []
    gen = run_finetune(FineTuneSpec(**SMALL), "w", None, registry, queue)
    events.append(next(gen))
    assert events[0]["type"] == "waiting" and events[0]["ahead"] == 1 and "waiting: 1 ahead" in events[0]["message"]
    registry.request_stop("w")
    events += list(gen)
    assert events[-1]["type"] == "error" and "Cancelled" in events[-1]["message"]
    assert queue.ahead(blocker) == 0 and queue.length(str(ft_session.pick_device())) == 1
    queue.leave(blocker)


@needs_data
def test_concurrent_sessions_separate_and_pretrained_unchanged(tmp_path):
    """Two sessions fine-tune the same pretrained model at once: they queue, their weights differ, and the
    shared pretrained model stays bit-for-bit identical. The store keeps serving forwards meanwhile."""
    models = StubModels()
    pretrained, _ = models.get("residual_net", "mnist")
    before = state_copy(pretrained)
    registry, queue = RunRegistry(), DeviceQueue()
    results: dict[str, list[dict]] = {}

    def session(name: str, **kw):
        spec = FineTuneSpec(start="pretrained", epochs=1, **{**SMALL, **kw})
        results[name] = drive(run_finetune(spec, name, models.get, registry, queue, out_dir=tmp_path / name))

    threads = [threading.Thread(target=session, args=("alice",), kwargs={"lr": 3e-3}),
               threading.Thread(target=session, args=("bob",), kwargs={"optimizer": "sgd", "lr": 0.05, "seed": 1})]
    for t in threads:
        t.start()
    x = torch.rand(4, 1, 28, 28)
    latencies = []
    while any(t.is_alive() for t in threads):  # "classification" of other users keeps being served
        t0 = time.perf_counter()
        with torch.no_grad():
            pretrained(x)
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.05)
    for t in threads:
        t.join()
    a, b = results["alice"][-1]["outcome"], results["bob"][-1]["outcome"]
    assert any(e["type"] == "waiting" and e["ahead"] == 1 for r in results.values() for e in r), "one had to queue"
    assert latencies and max(latencies) < 1.0
    assert same_state(before, pretrained.state_dict()), "pretrained weights changed"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert not same_state(sa, sb) and not same_state(sa, before) and not same_state(sb, before)
    ptrs = {v.data_ptr() for v in pretrained.state_dict().values()}
    assert not ptrs & {v.data_ptr() for v in sa.values()} and not ptrs & {v.data_ptr() for v in sb.values()}
    assert results["alice"][-1]["outcome"].folder != results["bob"][-1]["outcome"].folder
    assert a.model is not b.model is not pretrained


@needs_data
def test_checkpoint_loads_and_reproduces_shown_accuracy(tmp_path):
    spec = FineTuneSpec(start="scratch", epochs=1, **{**SMALL, "test_eval": True})
    events = drive(run_finetune(spec, "c", None, RunRegistry(), DeviceQueue(), out_dir=tmp_path))
    outcome = events[-1]["outcome"]
    model, meta = load_checkpoint(outcome.checkpoint, "cpu")
    _, val = ft.cached_splits("mnist", 2000, 0, 500)
    acc, _ = evaluate(model, val)
    assert acc == outcome.acc_after == meta["val_accuracy"]
    assert meta["arch"] == "residual_net" and meta["dataset"] == "mnist" and meta["format_version"] == 1
    assert meta["finetune"]["start"] == "scratch" and meta["recipe"]["epochs"] == 1
    assert 0.5 < meta["test_accuracy"] <= 1 and read_meta(outcome.checkpoint)["finetune"]["train_images"] == 2000
    assert same_state(model.state_dict(), outcome.model.state_dict())


def test_transfer_start_copies_features_and_resets_head():
    models = StubModels()
    source, meta = models.get("residual_net", "fashion_mnist")
    spec = FineTuneSpec(arch="residual_net", dataset="mnist", start="transfer").validate()
    start = ft_spec.start_point(spec, models.get)
    model = ft_spec.build_start_model(spec, start)
    assert start.fresh_head and "fresh classifier head" in start.description
    src, new = source.state_dict(), model.state_dict()
    assert all(torch.equal(src[k], new[k]) for k in src if not k.startswith("net.fc."))
    assert not torch.equal(src["net.fc.weight"], new["net.fc.weight"])
    assert start.normalization == (meta["normalization"]["mean"], meta["normalization"]["std"])
    model.net.conv1.weight.data.add_(1.0)  # the copy is independent of the store's model
    assert not torch.equal(source.net.conv1.weight, model.net.conv1.weight)


def test_freeze_trains_only_last_block_and_keeps_frozen_batchnorm_stats():
    spec = FineTuneSpec(arch="resnet18", start="scratch", freeze=True).validate()
    model = ft_spec.build_start_model(spec, StartPoint(None, ft_spec.catalog.arch("resnet18").config, (0.13, 0.31), "x"))
    before = state_copy(model)
    params, hook = ft_spec.freeze_all_but_last(model)
    trainable = {id(p) for p in params}
    names = [n for n, p in model.named_parameters() if id(p) in trainable]
    assert names and all(n.startswith(("net.layer4.", "net.fc.")) for n in names)
    opt = torch.optim.SGD(params, lr=0.1)
    model.train()
    loss = model(torch.rand(8, 1, 28, 28)).logsumexp(1).mean()
    loss.backward()
    opt.step()
    after = model.state_dict()
    frozen = [k for k in before if not k.startswith(("net.layer4.", "net.fc.")) and "num_batches" not in k]
    assert all(torch.equal(before[k], after[k]) for k in frozen), "frozen weights or BN statistics changed"
    assert not torch.equal(before["net.fc.weight"], after["net.fc.weight"])
    assert not torch.equal(before["net.layer4.0.residual.1.running_mean"], after["net.layer4.0.residual.1.running_mean"])
    hook.remove()


@needs_data
def test_session_store_keeps_runs_apart_and_release_deletes_checkpoints(tmp_path):
    """The per-session store: a finished run is offered, "use" makes the other tabs resolve it, "forget"
    goes back to the pretrained model, and Gradio's delete_callback (``release``) removes the checkpoint folders."""
    store, other = SessionModels(), SessionModels()
    spec = FineTuneSpec(start="scratch", epochs=1, **SMALL)
    events = drive(run_finetune(spec, "s", None, RunRegistry(), DeviceQueue(), store=store))
    outcome = events[-1]["outcome"]
    assert store.latest is outcome and store.get("residual_net", "mnist") is None, "finished, not yet in use"
    assert store.use() is outcome and store.get("residual_net", "mnist")[0] is outcome.model
    assert other.get("residual_net", "mnist") is None and other.use() is None, "another session sees nothing"
    assert os.path.isfile(outcome.checkpoint)
    assert store.forget() == 1 and store.get("residual_net", "mnist") is None
    import copy
    assert copy.deepcopy(store).latest is None, "gr.State's per-session copy starts empty"
    store.release()
    assert not os.path.exists(outcome.folder) and store.latest is None


def test_device_queue_order_and_stop_signal_pickles(tmp_path):
    import pickle

    q = DeviceQueue()
    t1, t2, t3 = q.join("cpu"), q.join("cpu"), q.join("cuda")
    assert (q.ahead(t1), q.ahead(t2), q.ahead(t3)) == (0, 1, 0)
    waits = q.wait(t2)
    assert next(waits) == 1
    q.leave(t1)
    assert list(waits) == [] and q.ahead(t2) == 0
    stop = StopSignal(tmp_path)
    remote = pickle.loads(pickle.dumps(stop))  # what a ZeroGPU worker receives
    assert not remote.is_set()
    stop.set()
    assert remote.is_set(), "a stop in the app must reach the worker's copy"
    stop.cleanup()


def test_bad_settings_and_missing_data_give_messages_not_tracebacks(monkeypatch, tmp_path):
    events = list(run_finetune(FineTuneSpec(epochs=50), "x", None, RunRegistry(), DeviceQueue()))
    assert events[-1] == {"type": "error", "message": "epochs must be a whole number from 1 to 10, not 50."}
    events = list(run_finetune(FineTuneSpec(start="pretrained", **SMALL), "x", _missing, RunRegistry(),
                               DeviceQueue()))
    assert events[-1]["type"] == "error" and "from scratch" in events[-1]["message"]

    monkeypatch.setenv("CNNDEMO_DATA", str(tmp_path / "empty"))

    def no_source(name, *a, **k):
        raise DataMissingError(f"Could not get {name}: no internet and no registry copy.")

    monkeypatch.setattr(ft_session, "prepare", no_source)
    events = list(run_finetune(FineTuneSpec(**SMALL), "x", None, RunRegistry(), DeviceQueue()))
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "error" and "status" in kinds
    assert "python -m cnndemo.data prepare --dataset mnist" in events[-1]["message"]
    assert "Traceback" not in events[-1]["message"]


def _missing(arch, dataset):
    raise FileNotFoundError(f"checkpoints/{arch}_{dataset}.safetensors is missing")


FAKE_SPACES = '''
import pickle, sys
import_state = {"torch_imported_before_spaces": "torch" in sys.modules}
calls = []

def _cpu_only(obj):
    import numpy, torch
    if isinstance(obj, torch.Tensor):
        assert obj.device.type == "cpu", "a CUDA tensor left the GPU function"
    elif isinstance(obj, dict):
        for v in obj.values():
            _cpu_only(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _cpu_only(v)

def GPU(duration=60):
    def decorate(fn):
        def wrapper(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            calls.append({"fn": fn.__name__, "duration": seconds})
            args = pickle.loads(pickle.dumps(args))  # a ZeroGPU worker gets pickled arguments...
            for event in fn(*args, **kwargs):
                _cpu_only(event)
                yield pickle.loads(pickle.dumps(event))  # ...and sends pickled results back
        wrapper.zerogpu_wrapped = fn
        wrapper.duration = duration
        return wrapper
    return decorate
'''


@needs_data
def test_zerogpu_decorates_training_with_fitted_duration(tmp_path):
    """With a fake `spaces` package: it is imported before torch, wraps the training function with a
    duration that grows with the epochs, and a run through the pickling boundary works (CPU data only)."""
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "__init__.py").write_text(FAKE_SPACES)
    script = textwrap.dedent('''
        import sys
        assert "spaces" not in sys.modules and "torch" not in sys.modules
        import cnndemo.finetune.job as ft  # must import spaces (via cnndemo/__init__) before torch
        import cnndemo.finetune.session as ft_session
        import spaces, torch
        torch.set_num_threads(1)
        from cnndemo.finetune.runs import DeviceQueue, RunRegistry
        assert spaces.import_state == {"torch_imported_before_spaces": False}, spaces.import_state
        assert ft.zerogpu.available() and ft.train_on_device.zerogpu_wrapped is ft.train_stream
        assert ft.train_on_device.duration is ft.gpu_duration
        short = ft.FineTuneSpec(arch="resnet18", epochs=1, subset=5000).validate()
        long = ft.FineTuneSpec(arch="resnet18", epochs=10, subset=55000).validate()
        assert 30 <= ft.gpu_duration(short, None, None) < ft.gpu_duration(long, None, None) <= 300
        spec = ft.FineTuneSpec(arch="residual_net", subset=1000, epochs=1, eval_size=200, test_eval=False)
        events = list(ft_session.run_finetune(spec, "z", None, RunRegistry(), DeviceQueue(), out_dir=r"%s"))
        assert events[-1]["type"] == "finished", events[-1]
        assert spaces.calls and spaces.calls[0]["fn"] == "train_stream" and 30 <= spaces.calls[0]["duration"] <= 300
        assert not torch.cuda.is_initialized()
        print("ZEROGPU-OK", spaces.calls[0]["duration"])
    ''' % (tmp_path / "out"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0 and "ZEROGPU-OK" in proc.stdout, proc.stdout + proc.stderr


def test_without_spaces_the_training_function_is_unwrapped():
    from cnndemo import zerogpu

    if zerogpu.available():
        pytest.skip("the spaces package is installed here")
    assert ft.train_on_device is ft.train_stream


@needs_data
@pytest.mark.parametrize("arch", ["vgg11", "googlenet", "resnet18", "inception_net", "residual_net"])
def test_every_network_fine_tunes_with_transfer_and_freeze(arch, tmp_path):
    """Each of the five networks runs through the tab's path (transfer start, frozen body) and stays loadable."""
    models = StubModels()
    source, _ = models.get(arch, "fashion_mnist")
    before = state_copy(source)
    spec = FineTuneSpec(arch=arch, dataset="mnist", start="transfer", freeze=True, epochs=1, subset=1000,
                        batch_size=128, eval_size=100, test_eval=False, lr=0.01)
    events = drive(run_finetune(spec, arch, models.get, RunRegistry(), DeviceQueue(), out_dir=tmp_path))
    assert events[-1]["type"] == "finished", events[-1]
    outcome = events[-1]["outcome"]
    start = next(e for e in events if e["type"] == "start")
    assert start["trainable_params"] < start["params"]
    trained = outcome.model.state_dict()
    body = [k for k in before if not any(k.startswith(p) for p in _last_block_prefixes(arch))]
    assert body and all(torch.equal(before[k], trained[k]) for k in body if "num_batches" not in k)
    assert same_state(before, source.state_dict())
    model, meta = load_checkpoint(outcome.checkpoint, "cpu")
    assert meta["finetune"]["frozen_all_but_last_block"] and same_state(model.state_dict(), trained)


def _last_block_prefixes(arch: str) -> tuple[str, ...]:
    return {"vgg11": ("net.features.block5.", "net.classifier."), "googlenet": ("net.inception.inception5b.", "net.head."),
            "resnet18": ("net.layer4.", "net.fc."), "inception_net": ("net.incep2.", "net.fc."),
            "residual_net": ("net.rblock2.", "net.fc.")}[arch]


@needs_data
@pytest.mark.parametrize("arch", ["inception_net", "residual_net"])
def test_real_pretrained_checkpoint_starts_high_and_stays_unchanged(arch, tmp_path):
    """With the committed checkpoint as the start: 'before' is the checkpoint's own accuracy, and it is not modified."""
    from cnndemo.train.checkpoints import checkpoint_path

    if not checkpoint_path(arch, "mnist").is_file():
        pytest.skip(f"no checkpoint {checkpoint_path(arch, 'mnist')} yet")
    models = StubModels(use_checkpoints=True)
    pretrained, meta = models.get(arch, "mnist")
    before = state_copy(pretrained)
    spec = FineTuneSpec(arch=arch, start="pretrained", epochs=1, subset=1000, eval_size=500, lr=1e-3, test_eval=False)
    events = drive(run_finetune(spec, "p", models.get, RunRegistry(), DeviceQueue(), out_dir=tmp_path))
    outcome = events[-1]["outcome"]
    assert outcome.acc_before > 0.95 and abs(outcome.acc_before - meta["val_accuracy"]) < 0.03
    assert outcome.acc_after > 0.9
    assert same_state(before, pretrained.state_dict())
