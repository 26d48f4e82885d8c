"""What each tab shows, as plain Python functions over one analysis per input (tests call them without a browser).

:func:`network_view` prepares the input once, runs one forward pass with hooks (:func:`cnndemo.inspection.analysis.analyse`)
and renders everything a network tab shows from it. The API functions (:func:`predict`, :func:`feature_view`,
:func:`branches_view`, :func:`residual_view`) are the same path with one view each. A session's fine-tuned
model is used when its :class:`~cnndemo.finetune.store.SessionModels` has one. Input problems raise
:class:`~cnndemo.data.decode.InputError`; unknown layers, modules and missing checkpoints raise ``LookupError``.
No gradio here: :mod:`cnndemo.app.layout` turns these into widgets.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import nn

from cnndemo import catalog
from cnndemo.app import texts
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.framing import Prepared, prepare
from cnndemo.finetune.store import SessionModels
from cnndemo.inspection import render
from cnndemo.inspection.analysis import (Analysis, InceptionView, ResidualView, analyse, inception_modules,
                                         model_summary, residual_modules)
from cnndemo.models import short_name, visual_layers

DEFAULT_DATASET = next(iter(catalog.DATASETS))


def model_note(zoo: ModelZoo, arch: str, dataset: str, session: SessionModels | None = None) -> str:
    """One line about the model in use: title, test accuracy, parameters, or why it is missing."""
    try:
        model, meta, from_session = zoo.resolve(arch, dataset, session)
    except LookupError as exc:
        return f"⚠️ {exc}"
    acc = meta.get("test_accuracy")
    acc_text = f"{acc:.2%} test accuracy" if isinstance(acc, (int, float)) else "accuracy not recorded"
    who = "**fine-tuned in this session**" if from_session else "pretrained"
    params = sum(p.numel() for p in model.parameters())
    return f"**{catalog.arch(arch).title}** on {catalog.dataset(dataset).title}: {who}, {acc_text}, {params:,} parameters."


# --------------------------------------------------------------------------- layer listings


def _any_model(zoo: ModelZoo, arch: str, dataset: str) -> nn.Module | None:
    """A model of ``arch`` (the listing is the same for every dataset), or None if none is loaded."""
    for ds in (dataset, *catalog.DATASETS):
        if zoo.has(arch, ds):
            return zoo.get(arch, ds)[0]
    return None


def layer_choices(zoo: ModelZoo, arch: str, dataset: str = DEFAULT_DATASET) -> list[tuple[str, str]]:
    """``(label, name)`` of every visualisable layer of ``arch``, e.g. ``("conv1 (conv)", "net.conv1")``.

    From the module tree alone: no forward pass (a first pass through every network cost seconds of start-up);
    the feature-map caption gives the layer's shape."""
    model = _any_model(zoo, arch, dataset)
    return [] if model is None else [(l.label, l.name) for l in visual_layers(model)]


def module_label(name: str) -> str:
    """``net.inception.inception3a`` -> ``3a``; ``net.incep1`` -> ``incep1``."""
    short = short_name(name)
    return short.removeprefix("inception.inception") if short.startswith("inception.inception") else short


def module_choices(zoo: ModelZoo, arch: str, dataset: str = DEFAULT_DATASET) -> list[tuple[str, str]]:
    """``(label, name)`` of the Inception modules of ``arch`` (3a..5b, or the course modules)."""
    model = _any_model(zoo, arch, dataset)
    return [(module_label(l.name), l.name) for l in inception_modules(model)] if model is not None else []


def default_layer(zoo: ModelZoo, arch: str, dataset: str = DEFAULT_DATASET) -> str | None:
    """The first visualisable layer of ``arch``."""
    choices = layer_choices(zoo, arch, dataset)
    return choices[0][1] if choices else None


# --------------------------------------------------------------------------- one analysis, every view


@dataclass
class NetworkView:
    """Everything a network tab shows for one input, rendered from one :class:`Analysis`."""

    prepared: Prepared
    analysis: Analysis
    top: dict[str, float]
    from_session: bool
    meta: dict[str, Any]
    layer: str | None = None
    grid: Image.Image | None = None
    caption: str = ""
    branch_grids: list[Image.Image] = field(default_factory=list)
    branch_table: str = ""
    residual_figure: Image.Image | None = None
    residual_table: str = ""

    @property
    def label(self) -> str:
        return next(iter(self.top))


def _classes(meta: dict, dataset: str) -> list[str]:
    return list(meta.get("classes") or catalog.dataset(dataset).classes)


def network_view(zoo: ModelZoo, source: Any, arch: str, dataset: str, layer: str | None = None,
                 module: str | None = None, extra: str = "plain", session: SessionModels | None = None,
                 prepared: Prepared | None = None, max_channels: int = 64) -> NetworkView:
    """Prepare ``source`` once (or take ``prepared``), analyse it once, render what a tab shows.

    ``layer``: the feature-map layer (None: no feature maps); ``extra``: ``"inception"`` adds the
    branches of ``module`` (None: the first module), ``"residual"`` adds the residual blocks.
    """
    model, meta, from_session = zoo.resolve(arch, dataset, session)
    if extra == "inception":
        modules = inception_modules(model)
        if not modules:
            raise LookupError(f"{catalog.arch(arch).title} has no Inception modules.")
        module = module or modules[0].name
    if extra == "residual" and not residual_modules(model):
        raise LookupError(f"{catalog.arch(arch).title} has no residual blocks.")
    prepared = prepared if prepared is not None else prepare(source, dataset)
    result = analyse(model, prepared.tensor, [layer] if layer else [], module if extra == "inception" else None,
                     residual=extra == "residual")
    view = NetworkView(prepared, result, result.top(_classes(meta, dataset)), from_session, meta)
    if layer:
        fm = next(iter(result.features.values()))
        c, h, w = fm.maps.shape
        view.layer = fm.layer.name
        view.grid = render.channel_grid(fm.maps, max_channels=max_channels, cols=8, cell=64)
        view.caption = (f"**{fm.layer.label}**: {c} channels of {h}x{w}; showing the {min(c, max_channels)} strongest, "
                        f"each labelled with its channel index and max activation.")
    if result.inception is not None:
        view.branch_grids, view.branch_table = _branches(result.inception)
    if result.residual:
        view.residual_figure, view.residual_table = render.residual_figure(result.residual), _residual_table(result.residual)
    return view


def _branches(view: InceptionView) -> tuple[list[Image.Image], str]:
    grids = [render.channel_grid(b.maps, max_channels=32, cols=4, cell=56,
                                 title=f"{b.label}: {b.channels} ch, {b.energy_share:.0%}") for b in view.branches]
    rows = "\n".join(f"| {b.label} | {b.channels} | {b.energy_share:.0%} |" for b in view.branches)
    total = " + ".join(str(b.channels) for b in view.branches)
    table = (f"**{short_name(view.module)}**: {total} = **{view.out_channels}** output channels\n\n"
             f"| branch | channels | share of activation energy |\n|---|---:|---:|\n{rows}")
    return grids, table


def _residual_table(views: list[ResidualView]) -> str:
    rows = "\n".join(f"| {short_name(v.name)} | {'x'.join(map(str, v.x.shape))} | {'x'.join(map(str, v.out.shape))} "
                     f"| {v.ratio:.2f} |" for v in views)
    return f"| block | x | out | ‖F(x)‖/‖x‖ |\n|---|---|---|---:|\n{rows}"


# --------------------------------------------------------------------------- one view each (the HTTP API)


def predict(zoo: ModelZoo, source: Any, arch: str, dataset: str, session: SessionModels | None = None) -> NetworkView:
    """Preprocess ``source`` for ``dataset`` and classify it with ``arch``: ``.top`` holds the top 5."""
    return network_view(zoo, source, arch, dataset, session=session)


def feature_view(zoo: ModelZoo, source: Any, arch: str, dataset: str, layer: str | None,
                 session: SessionModels | None = None, max_channels: int = 64):
    """(channel grid, caption, raw maps) of ``layer`` (None: the first one); an unknown layer is a LookupError."""
    model, _meta, _ = zoo.resolve(arch, dataset, session)
    view = network_view(zoo, source, arch, dataset, layer or visual_layers(model)[0].name, session=session,
                        max_channels=max_channels)
    return view.grid, view.caption, next(iter(view.analysis.features.values()))


def branches_view(zoo: ModelZoo, source: Any, arch: str, dataset: str, module: str | None,
                  session: SessionModels | None = None):
    """(one grid per branch, a markdown table of channels and energy shares, the raw view)."""
    view = network_view(zoo, source, arch, dataset, module=module, extra="inception", session=session)
    return view.branch_grids, view.branch_table, view.analysis.inception


def residual_view(zoo: ModelZoo, source: Any, arch: str, dataset: str, session: SessionModels | None = None):
    """(x | F(x) | out figure, a markdown table of ‖F(x)‖/‖x‖ per block, the raw views)."""
    view = network_view(zoo, source, arch, dataset, extra="residual", session=session)
    return view.residual_figure, view.residual_table, view.analysis.residual


# --------------------------------------------------------------------------- architecture and device

def _summary_text(model: nn.Module) -> str:
    """torchinfo's table for the model (computed once per model by ``model_summary``), with readable units."""
    text = str(model_summary(model))
    for unit, short in (("Units.GIGABYTES", "G"), ("Units.MEGABYTES", "M"), ("Units.KILOBYTES", "K"), ("Units.NONE", "")):
        text = text.replace(unit, short)
    return text


def architecture(zoo: ModelZoo, arch: str, dataset: str = DEFAULT_DATASET, session: SessionModels | None = None) -> str:
    """The torchinfo summary of ``arch`` for a 1 x 1 x 28 x 28 input (layers, shapes, parameters, mult-adds)."""
    try:
        model, _meta, _ = zoo.resolve(arch, dataset, session)
    except LookupError:
        model = _any_model(zoo, arch, dataset)
    if model is None:
        return f"No checkpoint of {catalog.arch(arch).title} is loaded."
    return _summary_text(model)


def explanation(zoo: ModelZoo, arch: str, dataset: str = DEFAULT_DATASET) -> str:
    """The teaching text for ``arch`` (with this model's parameter count)."""
    return texts.explanation(arch, _any_model(zoo, arch, dataset))


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
    return "\n\n".join(lines) + "\n\n" + texts.DEVICE_NOTES
