"""``/finetune`` over HTTP with gradio_client: streamed updates, final metrics, checkpoint download, Stop, sessions."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from cnndemo.train.checkpoints import load_checkpoint
from cnndemo.data.datasets import raw_folder
from cnndemo.finetune.job import cached_splits
from cnndemo.train.evaluation import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_standalone import StubModels, serve_standalone  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
pytestmark = pytest.mark.skipif(not (raw_folder("mnist") / "train-images-idx3-ubyte").is_file(),
                                reason="MNIST missing: run `python -m cnndemo.data prepare`")

# arch, dataset, start, epochs, lr, batch_size, optimizer, subset, augment, freeze
# 16,000 images: about 3 s of training at one thread, several progress updates at the tab's two per second.
ONE_SHORT_EPOCH = ("residual_net", "mnist", "scratch", 1, 3e-3, 64, "adam", 16000, False, False)
METRICS = -1  # the last output is the JSON metrics


@pytest.fixture(scope="module")
def server():
    yield from serve_standalone(StubModels())


def test_finetune_streams_updates_then_final_metrics_and_checkpoint(server):
    url, _ = server
    client = gradio_client.Client(url, verbose=False)
    job = client.submit(*ONE_SHORT_EPOCH, api_name="/finetune")
    seen = [out[METRICS] for out in job]  # iterating yields updates as they stream in
    outputs = job.outputs()
    phases = [m.get("phase") for m in (o[METRICS] for o in outputs) if isinstance(m, dict)]
    assert phases[-1] == "done", outputs[-1]
    assert phases.count("training") >= 3 and phases.index("training") < phases.index("done")
    assert len(seen) >= 2 and len(outputs) >= 5
    final = outputs[-1]
    metrics, checkpoint = final[METRICS], final[7]
    assert metrics["acc_after"] > metrics["acc_before"] + 0.3 and metrics["epochs_done"] == 1
    assert "Before → after" in final[5] and checkpoint and Path(checkpoint).is_file()
    model, meta = load_checkpoint(checkpoint, "cpu")  # the downloaded file, via the package's loader
    _, val = cached_splits("mnist", 2000, 0, 2000)
    assert evaluate(model, val)[0] == pytest.approx(metrics["acc_after"], abs=1e-12)
    assert meta["finetune"]["held_out_accuracy_after"] == metrics["acc_after"]


def test_stop_over_http_and_sessions_are_separate(server):
    url, _ = server
    alice, bob = gradio_client.Client(url, verbose=False), gradio_client.Client(url, verbose=False)
    assert "Nothing fine-tuned yet" in bob.predict(api_name="/finetune_use")
    job = alice.submit("residual_net", "mnist", "scratch", 3, 3e-3, 64, "adam", 20000, False, False,
                       api_name="/finetune")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:
        outs = job.outputs()
        if outs and isinstance(outs[-1][METRICS], dict) and outs[-1][METRICS].get("phase") == "training":
            break
        time.sleep(0.1)
    assert "Nothing is training" in bob.predict(api_name="/finetune_stop")  # bob cannot stop alice's run
    for _ in range(3):  # other users' classification keeps being served while alice trains
        t = time.perf_counter()
        assert "pretrained" in bob.predict(api_name="/classify_stub")
        assert time.perf_counter() - t < 2.0
    assert outs[-1][METRICS]["phase"] == "training" and job.status().code.name != "FINISHED"
    assert "Stopping" in alice.predict(api_name="/finetune_stop")
    t_stop = time.perf_counter()
    final = job.result()[METRICS]
    assert time.perf_counter() - t_stop < 5.0  # Stop ends the run in a second or two (plus HTTP)
    assert final["phase"] == "done" and final["stopped"] is True and final["epochs_done"] < 3
    assert "now use your fine-tuned" in alice.predict(api_name="/finetune_use")
    assert "fine-tuned" in alice.predict(api_name="/classify_stub")  # alice's other tabs see her model...
    assert "Nothing fine-tuned yet" in bob.predict(api_name="/finetune_use")
    assert "pretrained" in bob.predict(api_name="/classify_stub")  # ...bob's do not
    assert "pretrained models again" in alice.predict(api_name="/finetune_forget")
    assert "pretrained" in alice.predict(api_name="/classify_stub")
