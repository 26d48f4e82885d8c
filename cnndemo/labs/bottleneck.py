"""Bottleneck calculator: what the 1x1 reductions of an Inception module save (seeds 002 and 004).

For each branch of a real Inception module (``cnndemo.models.googlenet.Inception`` or the course's
``CourseInception``) it reports multiply-adds and parameters *with* the branch's 1x1 reduction and
*without* it, i.e. the same branch with its big kernel (or its stack of big kernels) applied straight
to the module's input. Everything is read from the module objects: channels and kernel sizes from
their ``nn.Conv2d`` layers, the input size and every conv's output size from one real forward pass
with hooks. No gradio, no matplotlib.

Conventions: a conv's multiply-adds are ``C_out * H_out * W_out * C_in / groups * k_h * k_w``
(bias additions, ReLUs and pooling are not counted); parameters are the real ones of the branch
(conv weights and biases, and BatchNorm's scale and shift where the model has BatchNorm). Without
the reduction, the reduction's conv (and its BatchNorm) is gone and the first big conv reads all
the module's input channels.

The models: every catalog architecture with Inception modules, in its demo configuration (28 x 28 input),
and the catalog's ``VARIANTS`` (seed 004's full-size GoogLeNet on a 1 x 224 x 224 input, whose module 3a is
the seed's own example ``Inception(192, 64, (96, 128), (16, 32), 32)`` at 28 x 28).
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from cnndemo import catalog
from cnndemo.inspection.analysis import inception_modules
from cnndemo.inspection.hooks import capture
from cnndemo.models import build_model

DEMO_SIDE = 28
_LOCK = threading.Lock()


def _model_spec(name: str) -> tuple[str, dict[str, Any], int]:
    """(catalog architecture, config, input side) of a catalog architecture or variant."""
    if name in catalog.VARIANTS:
        v = catalog.VARIANTS[name]
        return v.arch, v.config, v.side
    if name in catalog.ARCHITECTURES:
        return name, catalog.arch(name).config, DEMO_SIDE
    raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(bottleneck_archs())}.")


def title(name: str) -> str:
    """The model's title for menus."""
    return catalog.VARIANTS[name].title if name in catalog.VARIANTS else catalog.arch(name).title


def _has_inception(name: str) -> bool:
    """From the catalog alone (no model is built): the models shown in a tab whose kind is "inception"."""
    arch = catalog.VARIANTS[name].arch if name in catalog.VARIANTS else name
    return catalog.TABS[catalog.arch(arch).tab].kind == "inception"


def bottleneck_archs() -> list[str]:
    """The models with Inception modules: the catalog's architectures (catalog order), then its variants."""
    return [a for a in [*catalog.ARCHITECTURES, *catalog.VARIANTS] if _has_inception(a)]


def _conv_units(branch: nn.Module) -> list[tuple[nn.Conv2d, int]]:
    """The branch's convs in forward order, each with its parameter count plus that of the BatchNorm after it."""
    units: list[list] = []
    for m in branch.modules():
        if isinstance(m, nn.Conv2d):
            units.append([m, sum(p.numel() for p in m.parameters(recurse=False))])
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and units:
            units[-1][1] += sum(p.numel() for p in m.parameters(recurse=False))
    return [(c, n) for c, n in units]


def _macs(conv: nn.Conv2d, out_shape: tuple[int, ...], in_channels: int | None = None) -> int:
    c_in = conv.in_channels if in_channels is None else in_channels
    kh, kw = conv.kernel_size
    _, c_out, h, w = out_shape
    return c_out * h * w * (c_in // conv.groups) * kh * kw


def _branch_report(name: str, branch: nn.Module, in_channels: int, shapes: dict[nn.Module, tuple]) -> dict[str, Any]:
    units = _conv_units(branch)
    if not units:
        raise ValueError(f"branch {name!r} has no convolution")
    first = units[0][0]
    has_reduce = len(units) > 1 and first.kernel_size == (1, 1)
    big = units[1:] if has_reduce else units
    with_macs = sum(_macs(c, shapes[c]) for c, _ in units)
    with_params = sum(p.numel() for p in branch.parameters())
    if has_reduce:
        (b0, b0_params), rest = big[0], big[1:]
        b0_weight = b0.weight.numel() // b0.in_channels * in_channels  # the same kernel over all input channels
        without_macs = _macs(b0, shapes[b0], in_channels) + sum(_macs(c, shapes[c]) for c, _ in rest)
        without_params = b0_params - b0.weight.numel() + b0_weight + sum(n for _, n in rest)
    else:
        without_macs, without_params = with_macs, with_params
    kernel = big[0][0].kernel_size
    return {
        "name": name,
        "kernel": kernel[0] if kernel[0] == kernel[1] else list(kernel),
        "stacked": len(big),
        "reduce": first.out_channels if has_reduce else None,
        "out": big[-1][0].out_channels,
        "with": {"macs": with_macs, "params": with_params},
        "without": {"macs": without_macs, "params": without_params},
    }


@lru_cache(maxsize=None)
def _model_reports(name: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every Inception module of the model: (short name, report), from one forward pass with hooks."""
    arch, config, side = _model_spec(name)
    torch.manual_seed(0)
    model = build_model(arch, 0.0, 1.0, config).eval()
    modules = [(layer.name, model.get_submodule(layer.name)) for layer in inception_modules(model)]
    names = {id(m): n for n, m in model.named_modules()}
    convs = [names[id(c)] for _, mod in modules for c in mod.modules() if isinstance(c, nn.Conv2d)]
    with capture(model, convs, inputs=[n for n, _ in modules]) as seen, torch.no_grad():
        model(torch.zeros(1, 1, side, side))
    shapes = {model.get_submodule(n): tuple(seen[n].shape) for n in convs}
    reports = []
    for full, mod in modules:
        _, c_in, h, w = seen[full + ":in"].shape
        branches = [_branch_report(label, getattr(mod, attr), c_in, shapes)
                    for attr, label in zip(mod.branch_names, mod.branch_labels)]
        total_with = {k: sum(b["with"][k] for b in branches) for k in ("macs", "params")}
        total_without = {k: sum(b["without"][k] for b in branches) for k in ("macs", "params")}
        short = full.removeprefix("net.")
        reports.append((short, {
            "module": short, "in_channels": c_in, "hw": [h, w],
            "branches": branches, "total_with": total_with, "total_without": total_without,
            "ratio": total_without["macs"] / total_with["macs"],
        }))
    return tuple(reports)


def module_names(arch: str) -> list[str]:
    """The Inception modules of ``arch`` (e.g. ``inception.inception3a``; ``incep1`` for the course net)."""
    with _LOCK:
        return [name for name, _ in _model_reports(arch)]


def bottleneck(arch: str, module: str = "") -> dict[str, Any]:
    """The report for one Inception module of ``arch`` ("" = the first module).

    Returns ``{"module", "in_channels", "hw": [H, W], "branches": [{"name", "kernel", "stacked", "reduce",
    "out", "with": {"macs", "params"}, "without": {...}}], "total_with", "total_without", "ratio"}``
    ``ratio`` is multiply-adds without / with the reductions; the branches' ``out`` add up to the module's output.
    Raises ValueError for an unknown model or module.
    """
    _model_spec(arch)
    if not _has_inception(arch):
        raise ValueError(f"{arch} has no Inception modules; choose one of {', '.join(bottleneck_archs())}.")
    with _LOCK:  # the first call builds the model once; later calls read the cache
        reports = dict(_model_reports(arch))
    if not module:
        module = next(iter(reports))
    key = module.removeprefix("net.")
    matches = [k for k in reports if k == key or k.split(".")[-1] in (key, f"inception{key}")]
    if not matches:
        raise ValueError(f"{arch} has no Inception module {module!r}; choose one of {', '.join(reports)}.")
    report = reports[matches[0]]
    return {**report, "branches": [dict(b, **{"with": dict(b["with"]), "without": dict(b["without"])})
                                   for b in report["branches"]]}
