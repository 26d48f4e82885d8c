"""What each tab shows, as plain Python functions (tests call these without a browser).

Every function takes the :class:`~cnndemo.registry.ModelZoo` and the browser session's
``session_models`` dict (``"arch/dataset" -> (model, meta)``, from the fine-tuning tab) and
uses the session's model when there is one. Input problems raise
:class:`~cnndemo.preprocess.InputError`; a missing checkpoint raises
:class:`~cnndemo.registry.MissingModel`. No gradio here: ``cnndemo.ui`` turns these into widgets.
"""

from __future__ import annotations

import copy
import platform
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
from PIL import Image
from torch import nn

from cnndemo import explain, inspection, viz
from cnndemo.models import visual_layers
from cnndemo.preprocess import Prepared, prepare
from cnndemo.registry import ARCH_TITLES, DATASET_TITLES, ModelZoo


@dataclass
class Prediction:
    """Top-5 for one input: ``top`` maps class name -> probability, best first."""

    top: dict[str, float]
    prepared: Prepared
    from_session: bool
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return next(iter(self.top))


def predict(zoo: ModelZoo, source: Any, arch: str, dataset: str, session_models: dict | None = None) -> Prediction:
    """Preprocess ``source`` for ``dataset`` and classify it with ``arch``: top-5 classes."""
    model, meta, from_session = zoo.resolve(arch, dataset, session_models)
    prepared = prepare(source, dataset)
    probs = inspection.probabilities(model, prepared.tensor)
    classes = meta.get("classes") or _dataset_classes(dataset)
    return Prediction(inspection.top_k(probs, classes, 5), prepared, from_session, meta)


def _dataset_classes(dataset: str) -> list[str]:
    """Class names from ``cnndemo.data`` (imported late: it pulls in torchvision, slow at start-up)."""
    from cnndemo.data import CLASSES

    return CLASSES[dataset]


def model_note(zoo: ModelZoo, arch: str, dataset: str, session_models: dict | None = None) -> str:
    """One line about the model in use: title, test accuracy, parameters, or why it is missing."""
    try:
        model, meta, from_session = zoo.resolve(arch, dataset, session_models)
    except LookupError as exc:
        return f"⚠️ {exc}"
    acc = meta.get("test_accuracy")
    acc_text = f"{acc:.2%} test accuracy" if isinstance(acc, (int, float)) else "accuracy not recorded"
    who = "**fine-tuned in this session**" if from_session else "pretrained"
    params = sum(p.numel() for p in model.parameters())
    return f"**{ARCH_TITLES.get(arch, arch)}** on {DATASET_TITLES[dataset]}: {who}, {acc_text}, {params:,} parameters."


# --------------------------------------------------------------------------- layer listings


@lru_cache(maxsize=16)
def _shapes(arch: str, model_id: int, model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Output shape (C, H, W) of every visual layer, from one forward pass of a blank input."""
    layers = visual_layers(model)
    with inspection.capture(model, [l.name for l in layers]) as seen:
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28, device=inspection.model_device(model)))
    return {name: tuple(t.shape[1:]) for name, t in seen.items()}


def layer_choices(zoo: ModelZoo, arch: str, dataset: str = "mnist") -> list[tuple[str, str]]:
    """``(label, name)`` of every visualisable layer of ``arch``, e.g. ``("conv1 (conv) · 10x24x24", "net.conv1")``."""
    model = _any_model(zoo, arch, dataset)
    if model is None:
        return []
    shapes = _shapes(arch, id(model), model)
    return [(f"{l.label} · {'x'.join(map(str, shapes.get(l.name, ())))}", l.name) for l in visual_layers(model)]


def module_choices(zoo: ModelZoo, arch: str, dataset: str = "mnist") -> list[tuple[str, str]]:
    """``(label, name)`` of the Inception modules of ``arch`` (3a..5b, or the course modules)."""
    model = _any_model(zoo, arch, dataset)
    if model is None:
        return []
    return [(l.name.removeprefix("net.").removeprefix("inception.").removeprefix("inception"), l.name)
            for l in inspection.inception_modules(model)]


def _any_model(zoo: ModelZoo, arch: str, dataset: str) -> nn.Module | None:
    """A model of ``arch`` (the listing is the same for both datasets), or None if none is loaded."""
    for ds in (dataset, "mnist", "fashion_mnist"):
        if zoo.has(arch, ds):
            return zoo.get(arch, ds)[0]
    return None


def default_layer(zoo: ModelZoo, arch: str, dataset: str = "mnist") -> str | None:
    """The first visualisable layer of ``arch``."""
    choices = layer_choices(zoo, arch, dataset)
    return choices[0][1] if choices else None


# --------------------------------------------------------------------------- views


def feature_view(
    zoo: ModelZoo, source: Any, arch: str, dataset: str, layer: str | None, session_models: dict | None = None,
    max_channels: int = 64,
) -> tuple[Image.Image, str, inspection.FeatureMaps]:
    """(channel grid, caption, raw maps) of ``layer`` (default: the first one) for the input."""
    model, _meta, _ = zoo.resolve(arch, dataset, session_models)
    prepared = prepare(source, dataset)
    names = [l.name for l in visual_layers(model)]
    layer = layer if layer in names else names[0]
    fm = inspection.feature_maps(model, prepared.tensor, layer)
    c, h, w = fm.maps.shape
    shown = min(c, max_channels)
    grid = viz.channel_grid(fm.maps, max_channels=max_channels, cols=8, cell=88)
    caption = (
        f"**{fm.layer.label}**: {c} channels of {h}x{w}; showing the {shown} strongest, "
        f"each labelled with its channel index and max activation."
    )
    return grid, caption, fm


def branches_view(
    zoo: ModelZoo, source: Any, arch: str, dataset: str, module: str | None, session_models: dict | None = None,
) -> tuple[list[Image.Image], str, inspection.InceptionView]:
    """(one grid per branch, a markdown table of channels and energy shares, the raw view)."""
    model, _meta, _ = zoo.resolve(arch, dataset, session_models)
    modules = [l.name for l in inspection.inception_modules(model)]
    if not modules:
        raise LookupError(f"{ARCH_TITLES.get(arch, arch)} has no Inception modules.")
    module = module if module in modules else modules[0]
    view = inspection.inception_branches(model, prepare(source, dataset).tensor, module)
    grids = [viz.channel_grid(b.maps, max_channels=32, cols=4, cell=56, title=f"{b.label}: {b.channels} ch")
             for b in view.branches]
    rows = "\n".join(f"| {b.label} | {b.channels} | {b.energy_share:.0%} |" for b in view.branches)
    total = " + ".join(str(b.channels) for b in view.branches)
    table = (
        f"**{view.module.removeprefix('net.')}**: {total} = **{view.out_channels}** output channels\n\n"
        f"| branch | channels | share of activation energy |\n|---|---:|---:|\n{rows}"
    )
    return grids, table, view


def residual_view(
    zoo: ModelZoo, source: Any, arch: str, dataset: str, session_models: dict | None = None,
) -> tuple[Image.Image, str, list[inspection.ResidualView]]:
    """(x | F(x) | out figure, a markdown table of ‖F(x)‖/‖x‖ per block, the raw views)."""
    model, _meta, _ = zoo.resolve(arch, dataset, session_models)
    views = inspection.residual_blocks(model, prepare(source, dataset).tensor)
    if not views:
        raise LookupError(f"{ARCH_TITLES.get(arch, arch)} has no residual blocks.")
    rows = "\n".join(
        f"| {v.name.removeprefix('net.')} | {'x'.join(map(str, v.x.shape))} | {'x'.join(map(str, v.out.shape))} "
        f"| {v.ratio:.2f} |" for v in views
    )
    table = f"| block | x | out | ‖F(x)‖/‖x‖ |\n|---|---|---|---:|\n{rows}"
    return viz.residual_figure(views), table, views


# --------------------------------------------------------------------------- architecture and device

_SUMMARY_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _summary(arch: str, model_id: int, model: nn.Module) -> str:
    import torchinfo

    clone = copy.deepcopy(model).cpu().eval()  # a private copy: torchinfo's hooks never touch served models
    text = str(torchinfo.summary(clone, input_size=(1, 1, 28, 28), col_names=("output_size", "num_params", "mult_adds"),
                                 depth=4, verbose=0, device="cpu"))
    for unit, short in (("Units.GIGABYTES", "G"), ("Units.MEGABYTES", "M"), ("Units.KILOBYTES", "K"), ("Units.NONE", "")):
        text = text.replace(unit, short)
    return text


def architecture(zoo: ModelZoo, arch: str, dataset: str = "mnist", session_models: dict | None = None) -> str:
    """The torchinfo summary of ``arch`` for a 1 x 1 x 28 x 28 input (layers, shapes, parameters, mult-adds)."""
    try:
        model, _meta, _ = zoo.resolve(arch, dataset, session_models)
    except LookupError:
        model = _any_model(zoo, arch, dataset)
    if model is None:
        return f"No checkpoint of {ARCH_TITLES.get(arch, arch)} is loaded."
    with _SUMMARY_LOCK:
        return _summary(arch, id(model), model)


def explanation(zoo: ModelZoo, arch: str, dataset: str = "mnist") -> str:
    """The teaching text for ``arch`` (with this model's parameter count)."""
    return explain.explanation(arch, _any_model(zoo, arch, dataset))


def _nvidia_smi() -> str | None:
    """One line per GPU from ``nvidia-smi --query-gpu`` (None where it is not installed)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    fields = "name,temperature.gpu,pstate,power.draw,power.limit,memory.used,memory.total,utilization.gpu"
    try:
        out = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def device_report(zoo: ModelZoo) -> str:
    """Markdown: device, memory in use / total on a GPU, torch / CUDA / cuDNN versions, loaded models."""
    dev = zoo.device
    lines = [f"**Device:** {zoo.device_label} (`{dev}`)"]
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        lines.append(f"**GPU memory:** {(total - free) / 2**30:.2f} GiB in use of {total / 2**30:.1f} GiB "
                     f"(PyTorch: {torch.cuda.memory_allocated(dev) / 2**20:.0f} MiB allocated, "
                     f"{torch.cuda.memory_reserved(dev) / 2**20:.0f} MiB reserved)")
        smi = _nvidia_smi()
        if smi:
            lines.append("**nvidia-smi** (name, temp, perf state, power, memory, utilisation): `" + smi + "`")
    lines.append(f"**torch** {torch.__version__} · **CUDA** {torch.version.cuda or 'none (CPU build)'} · "
                 f"**cuDNN** {torch.backends.cudnn.version() or 'n/a'} · **Python** {platform.python_version()} · "
                 f"{torch.get_num_threads()} CPU threads")
    loaded = ", ".join(f"{a}/{d}" for a, d in zoo.available) or "none"
    lines.append(f"**Models loaded** in {zoo.load_seconds:.1f} s: {loaded}")
    if zoo.missing:
        lines.append("**Missing checkpoints:** " + ", ".join(f"{a}/{d}" for a, d in zoo.missing))
    return "\n\n".join(lines) + "\n\n" + explain.DEVICE_NOTES
