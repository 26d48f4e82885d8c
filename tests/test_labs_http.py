"""The Labs tab's endpoints over HTTP (gradio_client) against a small Blocks served in-process, real checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cnndemo import catalog
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.fetch import verify
from cnndemo.train.checkpoints import checkpoint_path, load_pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_standalone import free_port  # noqa: E402
from labs_hand import font_path, write_hand  # noqa: E402

gradio_client = pytest.importorskip("gradio_client")
pytestmark = [
    pytest.mark.skipif(bool(verify("mnist")),
                       reason="MNIST missing: run `python -m cnndemo.data prepare`"),
    pytest.mark.skipif(not checkpoint_path("residual_net", "mnist").is_file(), reason="no residual_net checkpoint"),
]


@pytest.fixture(scope="module")
def server():
    import gradio as gr

    from cnndemo.app.lab_panels import build_bottleneck_api, build_bottleneck_panel
    from cnndemo.app.labs_tab import build_labs_api, build_labs_tab
    from cnndemo.app.sessions import with_session

    zoo = ModelZoo(torch.device("cpu"))
    zoo.entries[("residual_net", "mnist")] = load_pretrained("residual_net", "mnist", "cpu")
    tab = catalog.TABS["googlenet"]
    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab(tab.title):  # the calculator follows the tab's model and module; /bottleneck takes any
                build_bottleneck_panel(tab, gr.Radio(tab.archs, value=tab.archs[0]), gr.Dropdown(["3a"], value="3a"))
            build_labs_tab(zoo)
        build_bottleneck_api()
        build_labs_api(zoo)
        keys = gr.JSON(visible=False)  # what this session uses, for the session test
        gr.Button(visible=False).click(with_session(lambda session: [f"{a}/{d}" for a, d in catalog.pairs()
                                                                     if session.get(a, d)]), None, keys,
                                       api_name="session_keys")
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    yield url
    demo.close()


def test_bottleneck_endpoint_gives_the_seed_numbers(server):
    client = gradio_client.Client(server, verbose=False)
    r = client.predict("googlenet_seed", "", api_name="/bottleneck")
    assert r["module"].endswith("3a") and r["in_channels"] == 192 and r["hw"] == [28, 28]
    five = next(b for b in r["branches"] if b["name"] == "5x5")
    assert five["without"]["macs"] == 5 * 5 * 192 * 32 * 28 * 28 and five["reduce"] == 16
    assert set(r) == {"module", "in_channels", "hw", "branches", "total_with", "total_without", "ratio"}
    course = client.predict("inception_net", "incep2", api_name="/bottleneck")
    assert any(b["kernel"] == 3 and b["stacked"] == 2 for b in course["branches"])
    with pytest.raises(Exception, match="no Inception module"):
        client.predict("googlenet", "nope", api_name="/bottleneck")


def test_gradient_flow_streams_then_ends_with_the_json(server):
    client = gradio_client.Client(server, verbose=False)
    job = client.submit(api_name="/gradient_flow", depth=8, steps=60)  # the other arguments keep their defaults
    list(job)
    outputs = job.outputs()
    assert len(outputs) >= 3  # start, at least one training update, done
    final = outputs[-1][2]
    assert final["depth"] == 8 and set(final) == {"depth", "plain", "residual"}
    for net in ("plain", "residual"):
        assert set(final[net]) == {"grad_norms", "loss"} and len(final[net]["grad_norms"]) == 8 and len(final[net]["loss"]) == 60
    assert final["plain"]["grad_norms"][0] < final["plain"]["grad_norms"][-1]
    assert "Done" in outputs[-1][0]


def test_teach_endpoint_and_the_model_stays_in_the_session(server, tmp_path):
    if not font_path():
        pytest.skip("no TrueType font")
    paths, labels = write_hand(tmp_path, 3, seed=2)  # 30 drawings: 20 to train on, 10 held out
    alice, bob = gradio_client.Client(server, verbose=False), gradio_client.Client(server, verbose=False)
    job = alice.submit([gradio_client.handle_file(p) for p in paths], json.dumps(labels), "residual_net",
                       api_name="/teach")
    list(job)
    outputs = job.outputs()
    r = outputs[-1][2]
    assert set(r) == {"yours_before", "yours_after", "mnist_before", "mnist_after", "held_out"}
    assert r["held_out"] == 10 and r["yours_after"] > r["yours_before"]
    assert r["mnist_after"] >= r["mnist_before"] - 0.01
    assert len(outputs) >= 3 and "before" in outputs[-1][1]
    assert alice.predict(api_name="/session_keys") == ["residual_net/mnist"]
    assert bob.predict(api_name="/session_keys") == []
    with pytest.raises(Exception, match="not one of the classes"):
        bob.predict([gradio_client.handle_file(paths[0])], '["ten"]', "residual_net", api_name="/teach")
