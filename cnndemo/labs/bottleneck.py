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

The models: ``googlenet`` and ``inception_net`` are the app's demo configurations (28 x 28 input);
``googlenet_seed`` is seed 004's full-size GoogLeNet on a 1 x 224 x 224 input, whose module 3a is
the seed's own example ``Inception(192, 64, (96, 128), (16, 32), 32)`` at 28 x 28.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from cnndemo.inspection import inception_modules
from cnndemo.models import ARCHS, DEMO_CONFIGS, build_model

# Extra models that are not demo configurations: name -> (arch, config, input side).
SEED_MODELS: dict[str, tuple[str, dict[str, Any], int]] = {
    "googlenet_seed": ("googlenet", {"net": {}, "pad": 0}, 224),  # seed 004 as printed: ratio 1, ImageNet stem
}
DEMO_SIDE = 28
_LOCK = threading.Lock()


def _model_spec(arch: str) -> tuple[str, dict[str, Any], int]:
    if arch in SEED_MODELS:
        return SEED_MODELS[arch]
    if arch in ARCHS:
        return arch, DEMO_CONFIGS[arch], DEMO_SIDE
    raise ValueError(f"Unknown model {arch!r}; choose one of {', '.join(bottleneck_archs())}.")


@lru_cache(maxsize=None)
def _has_inception(arch: str) -> bool:
    name, config, _ = _model_spec(arch)
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = build_model(name, 0.0, 1.0, config)
    return bool(inception_modules(model))


def bottleneck_archs() -> list[str]:
    """The models with Inception modules: the zoo's (in ``ARCHS`` order), then the seed's full-size ones."""
    return [a for a in ARCHS if _has_inception(a)] + [a for a in SEED_MODELS if _has_inception(a)]


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
def _model_reports(arch: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every Inception module of ``arch``'s model: (short name, report), from one forward pass."""
    name, config, side = _model_spec(arch)
    torch.manual_seed(0)
    model = build_model(name, 0.0, 1.0, config).eval()
    modules = [(l.name.removeprefix("net."), model.get_submodule(l.name)) for l in inception_modules(model)]
    shapes: dict[nn.Module, tuple] = {}
    watched = {id(m): m for _, mod in modules for m in [mod, *mod.modules()] if m is mod or isinstance(m, nn.Conv2d)}
    handles = []
    for m in watched.values():
        def hook(mod, args, output):
            shapes[mod] = tuple(output.shape)
            shapes[(mod, "in")] = tuple(args[0].shape)
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, side, side))
    finally:
        for h in handles:
            h.remove()
    reports = []
    for short, mod in modules:
        _, c_in, h, w = shapes[(mod, "in")]
        branches = [_branch_report(label, getattr(mod, attr), c_in, shapes)
                    for attr, label in zip(mod.branch_names, mod.branch_labels)]
        total_with = {k: sum(b["with"][k] for b in branches) for k in ("macs", "params")}
        total_without = {k: sum(b["without"][k] for b in branches) for k in ("macs", "params")}
        reports.append((short, {
            "arch": arch, "module": short, "in_channels": c_in, "hw": [h, w], "out_channels": shapes[mod][1],
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
    (plus ``arch`` and ``out_channels``); ``ratio`` is multiply-adds without / with the reductions.
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
