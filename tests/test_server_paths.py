"""Issue 18, "no server paths": the real app over HTTP shows no path of the server in ``/config``,
``/gradio_api/info`` or an example click's answer, and a click on an example still makes it the input.

What counts as a server path: :func:`benchmarks.loadtest.paths_check.server_paths` (under the repository, the home
folder or the Python install, or any absolute path outside Gradio's cache folder; Gradio's own URLs of files in its
cache are allowed). The ``paths`` fault cases (bad example indexes) run in tests/test_public.py with the others.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from benchmarks.loadtest import faults, rawhttp
from benchmarks.loadtest.paths_check import gradio_cache, server_paths
from cnndemo import catalog

ROOT = Path(__file__).resolve().parent.parent
CACHE = gradio_cache()


def test_the_checker_finds_paths():
    text = ('{"path": "%s/examples/mnist/3_3_0018.png", "url": "http://127.0.0.1:1/gradio_api/file=%s/ab/image.png", '
            '"data": "data:image/png;base64,iVBO+/usr/lib/AAA=", "api": "/classify", "md": "see /etc/passwd"}'
            % (ROOT, CACHE))
    assert server_paths(text) == [f"{ROOT}/examples/mnist/3_3_0018.png", "/etc/passwd"]


def test_config_and_api_info_name_no_server_path(running_app):
    config = httpx.get(running_app.url + "config", timeout=60).text
    info = httpx.get(running_app.url + "gradio_api/info", timeout=60).text
    in_config, in_info = server_paths(config), server_paths(info)
    print(f"\n/config: {len(in_config)} server paths ({len(set(in_config))} distinct); "
          f"/gradio_api/info: {len(in_info)}")
    assert in_config == [], f"/config names {len(set(in_config))} server paths, e.g. {sorted(set(in_config))[:3]}"
    assert in_info == [], f"/gradio_api/info names server paths: {sorted(set(in_info))[:3]}"


def _value(data):
    return data.get("value") if isinstance(data, dict) and data.get("__type__") == "update" else data


def test_an_example_click_over_http_becomes_the_input_and_is_analysed(running_app):
    """The browser's way: the shelf's click event answers the upload box's new value (the example's picture, in
    Gradio's cache), then the upload's change event analyses it; the VGG tab answers what /classify answers."""
    from gradio_client import Client, handle_file

    from cnndemo.app.examples import example_files

    url = running_app.url
    config = httpx.get(url + "config", timeout=60).json()
    by_id = {c["id"]: c for c in config["components"]}
    title = catalog.dataset("mnist").title
    shelf = next(c["id"] for c in config["components"] if c["type"] == "dataset" and c["props"].get("label") == title)
    click = next(d for d in config["dependencies"] if [shelf, "click"] in d["targets"])
    reply = rawhttp.queue_join(url, click["id"], [3])
    assert reply.ok, reply.message
    assert server_paths(str(reply.value)) == []
    value = _value(reply.value[0])
    example = Path(example_files("mnist")[3])
    assert example.name.startswith("3_")
    picture = httpx.get(value["url"] if value["url"].startswith("http") else url.rstrip("/") + value["url"], timeout=60)
    assert picture.status_code == 200 and picture.content == example.read_bytes(), "the click gives the example"

    upload = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "upload")
    change = next(d for d in config["dependencies"] if [upload, "change"] in d["targets"])
    data = [value if i == upload else by_id[i]["props"].get("value") for i in change["inputs"]]
    answer = rawhttp.queue_join(url, change["id"], data)
    assert answer.ok, answer.message
    assert server_paths(str(answer.value)) == []
    outputs = dict(zip(change["outputs"], answer.value))
    label = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "label-vgg")
    expected = Client(url, verbose=False).predict(handle_file(str(example)), "vgg11", "mnist", api_name="/classify")
    assert _value(outputs[label])["label"] == expected["label"]
    sees = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "sees")
    assert _value(outputs[sees]) and _value(outputs[sees]).get("url"), "what the network sees is shown"


def test_a_broken_checkpoint_is_reported_without_its_path(tmp_path, monkeypatch):
    """A checkpoint that does not load is reported in the tab's model note (in /config at page load) and in every
    answer that needs it: by file name, not by its path on the server."""
    import torch
    from safetensors.torch import save_file

    from cnndemo.app import views
    from cnndemo.app.zoo import ModelZoo

    monkeypatch.setenv("CNNDEMO_CHECKPOINTS", str(tmp_path))
    save_file({"x": torch.zeros(1)}, str(tmp_path / "vgg11_mnist.safetensors"))  # no cnndemo metadata
    zoo = ModelZoo.load("cpu")
    note = views.model_note(zoo, "vgg11", "mnist")
    assert "vgg11_mnist.safetensors" in note and str(tmp_path) not in note and server_paths(note) == [], note


def test_core_messages_lose_their_paths():
    from cnndemo.finetune.spec import hide_paths

    message = hide_paths(f"MNIST digits not found in {ROOT}/data/. Missing {ROOT}/data/MNIST/raw/t10k-images-idx3-ubyte; "
                         "see https://example.com/a/b.png; 3 x 1/2")
    assert server_paths(message) == [] and "t10k-images-idx3-ubyte" in message
    assert "https://example.com/a/b.png" in message and "3 x 1/2" in message


def test_a_fine_tune_without_data_or_checkpoint_names_no_path(tmp_path, monkeypatch):
    from cnndemo.data.datasets import DataMissingError
    from cnndemo.finetune import session as ft_session
    from cnndemo.finetune.runs import DeviceQueue, RunRegistry
    from cnndemo.finetune.spec import FineTuneSpec, FriendlyError, start_point

    small = {"arch": "residual_net", "dataset": "mnist", "subset": 2000, "batch_size": 64}

    def missing(arch, dataset):
        raise FileNotFoundError(f"{tmp_path}/checkpoints/{arch}_{dataset}.safetensors is missing")

    with pytest.raises(FriendlyError) as no_checkpoint:
        start_point(FineTuneSpec(start="pretrained", **small), missing)

    def no_source(name, *a, **k):
        raise DataMissingError(f"Could not get {name}. Problems: missing {tmp_path}/empty/MNIST/raw/train-images")

    monkeypatch.setenv("CNNDEMO_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(ft_session, "prepare", no_source)
    events = list(ft_session.run_finetune(FineTuneSpec(**small), "x", None, RunRegistry(), DeviceQueue()))
    events.append({"type": "error", "message": str(no_checkpoint.value)})
    messages = [e["message"] for e in events if "message" in e]
    assert len([e for e in events if e["type"] == "error"]) == 2
    assert all(str(tmp_path) not in m and server_paths(m) == [] for m in messages), messages


PATHS = [f for f in faults.CATALOGUE if f.group == "paths"]


def test_the_paths_faults_are_in_the_catalogue():
    assert {"config_and_api_info_name_no_server_path", "example_index_nan", "example_index_string"} <= {
        f.name for f in PATHS}


@pytest.mark.parametrize("fault", PATHS, ids=[f.name for f in PATHS])
def test_paths_fault_gets_a_clear_answer(running_app, fault, tmp_path):
    """The ``paths`` cases of the fault catalogue alone (tests/test_public.py runs them with all the others)."""
    reply, why = faults.run_fault(fault, faults.Ctx(running_app.url, tmp_path, client=None))
    assert why is None, why
    assert len(reply.message) <= 300 and "\n" not in reply.message


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-v", "-s"])
