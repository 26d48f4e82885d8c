"""The labs' core on real modules, real MNIST and real checkpoints: bottleneck numbers, gradient flow, teaching, filters."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnndemo import catalog
from cnndemo.app import labs_plots as render
from cnndemo.finetune.store import SessionModels
from cnndemo.inspection.analysis import first_conv_kernels
from cnndemo.inspection.render import kernel_grid
from cnndemo.labs.bottleneck import bottleneck, bottleneck_archs, module_names
from cnndemo.labs.gradient_flow import LabSpec, conv_layers, gradient_flow, make_pair
from cnndemo.labs.teach import TeachSpec, load_drawings, split_held_out, teach
from cnndemo.train.checkpoints import load_pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labs_hand import font_path, hollow_hand  # noqa: E402


def conv_macs(c_in: int, c_out: int, k: int, h: int, w: int) -> int:
    return c_in * c_out * k * k * h * w


def conv_params(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


# ----------------------------------------------------------------------------- bottleneck


def test_seed_example_inception_3a_by_hand():
    """Seed 004: Inception(192, 64, (96, 128), (16, 32), 32) on [1, 192, 28, 28]; ReLU convs with bias, no BN."""
    r = bottleneck("googlenet_seed", "")  # "" = the first module, 3a
    assert r["module"].endswith("3a") and r["in_channels"] == 192 and r["hw"] == [28, 28]
    b = {x["name"]: x for x in r["branches"]}
    assert [x["out"] for x in r["branches"]] == [64, 128, 32, 32]
    hw = (28, 28)
    five = b["5x5"]
    assert (five["kernel"], five["stacked"], five["reduce"]) == (5, 1, 16)
    assert five["without"]["macs"] == conv_macs(192, 32, 5, *hw) == 120_422_400  # "about 120M"
    assert five["with"]["macs"] == conv_macs(192, 16, 1, *hw) + conv_macs(16, 32, 5, *hw)
    assert round(five["with"]["macs"] / 1e6, 1) == 12.4  # "about 12.4M"
    assert five["with"]["params"] == conv_params(192, 16, 1) + conv_params(16, 32, 5)
    assert five["without"]["params"] == conv_params(192, 32, 5)
    three = b["3x3"]
    assert three["with"]["macs"] == conv_macs(192, 96, 1, *hw) + conv_macs(96, 128, 3, *hw)
    assert three["without"]["macs"] == conv_macs(192, 128, 3, *hw)
    for name, out in (("1x1", 64), ("pool-proj", 32)):  # no reduction: with == without
        assert b[name]["reduce"] is None and b[name]["kernel"] == 1
        assert b[name]["with"] == b[name]["without"] == {"macs": conv_macs(192, out, 1, *hw),
                                                         "params": conv_params(192, out, 1)}
    total_with = sum(x["with"]["macs"] for x in r["branches"])
    total_without = sum(x["without"]["macs"] for x in r["branches"])
    assert r["total_with"]["macs"] == total_with and r["total_without"]["macs"] == total_without
    assert r["ratio"] == pytest.approx(total_without / total_with)
    # The whole module's real parameter count is the sum of its branches' "with" parameters.
    assert set(r) == {"module", "in_channels", "hw", "branches", "total_with", "total_without", "ratio"}
    assert set(five) == {"name", "kernel", "stacked", "reduce", "out", "with", "without"}
    assert r["total_with"]["params"] == 163_696 == sum(
        conv_params(*a) for a in [(192, 64, 1), (192, 96, 1), (96, 128, 3), (192, 16, 1), (16, 32, 5), (192, 32, 1)])


def test_course_module_double_3x3_and_sizes_from_the_forward_pass():
    r1, r2 = bottleneck("inception_net", "incep1"), bottleneck("inception_net", "incep2")
    assert (r1["in_channels"], r1["hw"]) == (10, [12, 12]) and (r2["in_channels"], r2["hw"]) == (20, [4, 4])
    double = next(b for b in r1["branches"] if b["stacked"] == 2)
    assert (double["kernel"], double["stacked"], double["reduce"], double["out"]) == (3, 2, 16, 24)
    hw = (12, 12)
    assert double["with"]["macs"] == conv_macs(10, 16, 1, *hw) + conv_macs(16, 24, 3, *hw) + conv_macs(24, 24, 3, *hw)
    assert double["without"]["macs"] == conv_macs(10, 24, 3, *hw) + conv_macs(24, 24, 3, *hw)
    assert double["without"]["params"] == conv_params(10, 24, 3) + conv_params(24, 24, 3)
    # With only 10 input channels the "reduction" to 16 widens: the honest ratio is below 1.
    assert r1["ratio"] < 1 < bottleneck("googlenet_seed", "5b")["ratio"]


def test_app_googlenet_modules_with_batchnorm():
    """The app's GoogLeNet (ratio 4, BatchNorm, small stem): 4a sees 480 / 4 channels at 7 x 7."""
    names = module_names("googlenet")
    assert len(names) == 9 and names[0].endswith("3a")
    r = bottleneck("googlenet", "4a")
    assert (r["in_channels"], r["hw"]) == (120, [7, 7])
    five = next(b for b in r["branches"] if b["name"] == "5x5")  # (16, 48) / 4 = (4, 12); convs without bias, BN
    assert five["reduce"] == 4 and five["out"] == 12
    assert five["with"]["macs"] == conv_macs(120, 4, 1, 7, 7) + conv_macs(4, 12, 5, 7, 7)
    assert five["with"]["params"] == conv_params(120, 4, 1, False) + 2 * 4 + conv_params(4, 12, 5, False) + 2 * 12
    assert five["without"]["params"] == conv_params(120, 12, 5, False) + 2 * 12
    assert set(bottleneck_archs()) >= {"googlenet", "inception_net", "googlenet_seed"}


def test_bottleneck_bad_input_is_a_sentence():
    with pytest.raises(ValueError, match="no Inception module"):
        bottleneck("googlenet", "9z")
    with pytest.raises(ValueError, match="has no Inception modules"):
        bottleneck("vgg11", "")
    with pytest.raises(ValueError, match="Unknown model"):
        bottleneck("alexnet", "")
    md = render.bottleneck_html(bottleneck("googlenet_seed", "3a"))
    assert "120.42 M" in md and "12.44 M" in md and "white-space:nowrap" in md


# ----------------------------------------------------------------------------- gradient flow


def test_pair_shares_layers_and_weights():
    plain, residual = make_pair(20, 8)
    assert len(conv_layers(plain)) == len(conv_layers(residual)) == 20
    for (k, a), (_, b) in zip(plain.state_dict().items(), residual.state_dict().items()):
        assert torch.equal(a, b), k
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in plain.modules())


def test_plain_net_gradients_vanish_and_it_learns_slower(mnist_ready):
    events = list(gradient_flow(LabSpec(depth=20, steps=40)))
    assert [e["type"] for e in events][0] == "start" and events[-1]["type"] == "done"
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 40 and [e["step"] for e in steps] == list(range(1, 41))
    done = events[-1]
    plain, residual = done["plain"], done["residual"]
    assert len(plain["grad_norms"]) == len(residual["grad_norms"]) == 20 and len(plain["loss"]) == 40
    p, r = np.array(plain["grad_norms"]), np.array(residual["grad_norms"])
    # The plain net: the first layers get a tiny fraction of what the last layers get.
    assert p[:3].max() < 1e-3 * p[-3:].max()
    # With skip connections the first layer's gradient is of the same order as the last layer's.
    assert r[0] > 0.05 * r[-1] and r[0] > 1e3 * p[0]
    # ... and it learns faster: lower recent loss and better held-out accuracy after the same steps.
    assert np.mean(residual["loss"][-10:]) < np.mean(plain["loss"][-10:]) - 0.3
    assert residual["val_acc_after"] > plain["val_acc_after"] + 0.15


def test_gradient_lab_rejects_bad_settings():
    with pytest.raises(ValueError, match="even number"):
        LabSpec(depth=7).validate()
    with pytest.raises(ValueError, match="steps"):
        LabSpec(steps=5).validate()


# ----------------------------------------------------------------------------- teach


def test_split_keeps_a_part_of_each_digit_out():
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 1, 2])
    train, held = split_held_out(labels)
    assert set(train.tolist()).isdisjoint(held.tolist()) and len(train) + len(held) == 10
    assert sorted(labels[held].tolist()) == [0, 1, 1]  # a third of each digit; a lone drawing stays in training
    with pytest.raises(ValueError, match="at least two"):
        split_held_out(torch.tensor([3, 4]))


def test_load_drawings_explains_bad_input():
    images, labels = hollow_hand(1) if font_path() else pytest.skip("no TrueType font")
    with pytest.raises(ValueError, match="labels"):
        load_drawings(images, labels[:-1])
    with pytest.raises(ValueError, match="not one of the classes"):
        load_drawings(images[:1], ["seven"])
    with pytest.raises(ValueError, match="Drawing 1"):
        load_drawings([np.zeros((64, 64), np.uint8)], ["3"])
    data = load_drawings(images, labels)
    assert data.images.shape == (10, 28, 28) and data.images.dtype == torch.uint8


def test_teaching_a_new_hand_helps_without_forgetting_mnist(mnist_ready):
    if not font_path():
        pytest.skip("no TrueType font")
    model, meta = load_pretrained("residual_net", "mnist", "cpu")
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = hollow_hand(6, seed=1)
    events = list(teach(model, meta, load_drawings(images, labels), TeachSpec()))
    assert events[0]["type"] == "start" and events[-1]["type"] == "done"
    assert any(e["type"] == "step" for e in events) and sum(e["type"] == "epoch" for e in events) == TeachSpec().epochs
    r = events[-1]["result"]
    assert r["held_out"] == 20 and r["trained_on"] == 40
    assert r["yours_after"] >= r["yours_before"] + 0.3  # the hollow digits are mostly misread before
    assert r["mnist_after"] >= r["mnist_before"] - 0.01  # at most 1 point forgotten
    for k, v in model.state_dict().items():  # the pretrained model is untouched
        assert torch.equal(v, before_state[k]), k
    taught, new_meta = events[-1]["model"], events[-1]["meta"]
    assert taught is not model and not taught.training and new_meta["taught"]["yours_after"] == r["yours_after"]
    assert "finetune" in new_meta and "taught" not in meta


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize("arch", list(catalog.ARCHITECTURES))
def test_first_conv_kernels_of_every_checkpoint(arch):
    try:
        model, _ = load_pretrained(arch, "mnist", "cpu")
    except FileNotFoundError:
        pytest.skip(f"no {arch} checkpoint")
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    k = first_conv_kernels(model)
    assert isinstance(k, np.ndarray) and k.shape == tuple(conv.weight.shape) and k.shape[1] == 1
    assert np.array_equal(k, conv.weight.detach().numpy())
    k[:] = 0  # a copy: the model keeps its weights
    assert conv.weight.abs().sum() > 0
    seen = {}
    handle = conv.register_forward_hook(lambda m, a, o: seen.update(inputs=a[0]))  # returns None: output kept
    model(torch.rand(1, 1, 28, 28))
    handle.remove()
    assert seen["inputs"].shape[1] == 1  # it is the layer that looks at the pixels


def test_kernel_grid_is_signed():
    k = np.zeros((2, 1, 3, 3), np.float32)
    k[0, 0, 1, 1], k[1, 0, 1, 1] = 1.0, -1.0
    im = np.asarray(kernel_grid(k, cell=30, cols=2)).astype(int)
    pos = im[6 + 15, 6 + 15]  # centre of kernel 0 (top 6, gap 6, 10-pixel cells)
    neg = im[6 + 15, 6 + 30 + 6 + 15]
    assert pos[0] > pos[2] + 50 and neg[2] > neg[0] + 50  # red for > 0, blue for < 0


def test_session_store_put_is_used_forgotten_and_released(tmp_path):
    """A taught model goes into the session's store: the other tabs resolve it, "back to the pretrained model"
    forgets it, another session never sees it, and release deletes its folder."""
    store, other = SessionModels(), SessionModels()
    model, folder = torch.nn.Linear(1, 1), tmp_path / "taught"
    folder.mkdir()
    store.put("residual_net", "mnist", model, {"taught": {}}, folder=str(folder))
    assert store.get("residual_net", "mnist")[0] is model and other.get("residual_net", "mnist") is None
    assert store.latest is None and len(store) == 1  # not a fine-tune run: "use" has nothing new to offer
    replacement = torch.nn.Linear(1, 1)
    store.put("residual_net", "mnist", replacement, {})
    assert store.get("residual_net", "mnist")[0] is replacement and not folder.exists(), "the replaced one's files go"
    assert store.forget() == 1 and store.get("residual_net", "mnist") is None
    again = tmp_path / "again"
    again.mkdir()
    store.put("residual_net", "mnist", model, {}, folder=str(again))
    store.release()
    assert not again.exists() and store.get("residual_net", "mnist") is None


def test_fine_tune_shows_the_first_conv_kernels_after_every_epoch(mnist_ready, tmp_path):
    """The fine-tune run sends the first conv's kernels (plain NumPy) before training and after each epoch; they
    change, the last ones are the kept model's, and the tab turns them into one kernel grid per epoch."""
    from cnndemo.app.finetune_view import OUTPUT_NAMES, TabView
    from cnndemo.finetune.runs import DeviceQueue, RunRegistry
    from cnndemo.finetune.session import run_finetune
    from cnndemo.finetune.spec import FineTuneSpec

    spec = FineTuneSpec(arch="residual_net", dataset="mnist", start="scratch", epochs=2, subset=1000, batch_size=64,
                        eval_size=200, test_eval=False)  # the smallest subset the tab allows
    view, shown = TabView(spec), None
    events = []
    for ev in run_finetune(spec, "s", None, RunRegistry(), DeviceQueue(), out_dir=tmp_path):
        events.append(ev)
        out = view.update(ev)
        if out is not None and not isinstance(out[OUTPUT_NAMES.index("filters")], dict):
            shown = out[OUTPUT_NAMES.index("filters")]
    assert events[-1]["type"] == "finished", events[-1]
    start = next(e for e in events if e["type"] == "start")
    epochs = [e for e in events if e["type"] == "epoch"]
    model = events[-1]["outcome"].model
    assert isinstance(start["kernels"], np.ndarray) and start["kernels"].shape == first_conv_kernels(model).shape
    assert len(epochs) == 2 and not np.array_equal(epochs[0]["kernels"], start["kernels"])
    assert np.allclose(epochs[-1]["kernels"], first_conv_kernels(model), atol=1e-6)
    assert [caption for _, caption in shown] == ["before training", "after epoch 1", "after epoch 2"]
    assert OUTPUT_NAMES[-1] == "metrics" and OUTPUT_NAMES[7] == "checkpoint"  # the API's indices stay put


def test_lab_runs_are_one_at_a_time_per_visitor():
    """The labs train, so they follow fine-tuning's rule: a second run from the same address (another session
    hash, which the client chooses) is refused before any work; another address may run; the slot frees."""
    import types

    import gradio as gr

    from cnndemo.app.labs_streams import fair

    def visitor(session: str, host: str):
        return types.SimpleNamespace(session_hash=session, headers={}, client=types.SimpleNamespace(host=host))

    def slow():
        yield "step 1"
        yield "step 2"

    first = fair(slow(), visitor("s1", "10.0.0.1"))
    assert next(first) == "step 1"
    with pytest.raises(gr.Error, match="one at a time per visitor"):
        next(fair(slow(), visitor("s2", "10.0.0.1")))
    assert next(fair(slow(), visitor("s3", "10.0.0.2"))) == "step 1"
    assert list(first) == ["step 2"]
    assert list(fair(slow(), visitor("s2", "10.0.0.1"))) == ["step 1", "step 2"]
