"""Where a unit looks: theoretical and effective receptive fields.

The theoretical receptive field is computed statically, without running the network: each module's
``forward`` is traced with ``torch.fx`` one level deep (children stay calls), and an interval rule is
pushed through the graph. Per spatial axis a value carries ``(jump, lo, hi)``: output index ``i`` sees
input pixels ``lo + i*jump .. hi + i*jump`` (inclusive, in 28 x 28 input coordinates). A conv or pool
with kernel k, stride s, padding p, dilation d maps it to ``(jump*s, lo - p*jump, hi + (d*(k-1) - p)*jump)``;
``F.pad`` (the model's own 28 -> 32 padding for VGG) shifts it; element-wise ops, ``torch.cat`` and
``+`` take the union (so Inception modules get the union over their branches, residual blocks the union
of residual path and shortcut); flatten, linear and global pools see everything.

The effective receptive field is the gradient of one unit with respect to the input image.
Plain torch: no gradio, no matplotlib.
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn
from torch.nn import functional as F

from cnndemo.inspection.analysis import find
from cnndemo.models import short_name, visual_layers
from cnndemo.train.evaluation import model_device

SIDE = 28  # the model input is SIDE x SIDE


@dataclass(frozen=True)
class Span:
    """Per-axis receptive field: output index i sees input pixels [lo + i*jump, hi + i*jump] (inclusive)."""

    jump: int
    lo: int
    hi: int

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def conv(self, k: int, s: int, p: int, d: int = 1) -> "Span":
        return Span(self.jump * s, self.lo - p * self.jump, self.hi + (d * (k - 1) - p) * self.jump)

    def union(self, other: "Span") -> "Span":
        if other.jump != self.jump:
            raise ValueError(f"cannot merge receptive fields with strides {self.jump} and {other.jump}")
        return Span(self.jump, min(self.lo, other.lo), max(self.hi, other.hi))


GLOBAL = "global"  # the value depends on the whole input (after flatten / linear / global pooling)
RF = tuple  # (Span rows, Span cols) or GLOBAL

_IDENTITY = (nn.BatchNorm2d, nn.ReLU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Sigmoid, nn.Tanh, nn.GELU)
_GLOBALISE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)
_ELEMENTWISE = {F.relu, torch.relu, torch.cat, torch.add, torch.sub, torch.mul, operator.add, operator.sub,
                operator.mul, operator.truediv, operator.iadd, torch.sigmoid, torch.tanh, F.dropout}
_GLOBAL_FNS = {torch.flatten, F.adaptive_avg_pool2d, F.linear}
_GLOBAL_METHODS = {"view", "reshape", "flatten", "mean", "sum"}
_ELEMENTWISE_METHODS = {"relu", "add", "mul", "sub", "div", "contiguous", "float"}


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _union(values: list) -> object:
    spatial = [v for v in values if v is not None]
    if not spatial:
        return None  # a constant (buffer, shape, number)
    if any(v == GLOBAL for v in spatial):
        return GLOBAL
    rows, cols = spatial[0]
    for r, c in spatial[1:]:
        rows, cols = rows.union(r), cols.union(c)
    return (rows, cols)


def _leaf_rule(module: nn.Module, rf):
    if rf is None or rf == GLOBAL:
        return rf
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = _pair(module.kernel_size), _pair(module.stride or module.kernel_size), _pair(module.padding)
        d = _pair(getattr(module, "dilation", 1))
        if isinstance(module.padding, str):
            raise NotImplementedError(f"padding={module.padding!r} is not supported")
        return (rf[0].conv(k[0], s[0], p[0], d[0]), rf[1].conv(k[1], s[1], p[1], d[1]))
    if isinstance(module, _IDENTITY):
        return rf
    if isinstance(module, _GLOBALISE):
        return GLOBAL
    raise NotImplementedError(f"no receptive-field rule for {type(module).__name__}")


class _ShallowTracer(torch.fx.Tracer):
    """Traces one module's forward; every submodule call stays a single ``call_module`` node.

    Without torch.fx's automatic wrapping of ``math`` functions (the models call none): looking for them in every
    traced forward's globals was a third of the tracing, which runs while the app starts."""

    def __init__(self) -> None:
        super().__init__(autowrap_modules=(), autowrap_functions=())

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return True


def _propagate(module: nn.Module, rf, prefix: str, out: dict[str, object]):
    """The receptive field of ``module``'s output given that of its input; records every named submodule."""
    if not list(module.children()) and not _has_own_forward_logic(module):
        result = _leaf_rule(module, rf)
    else:
        graph = _ShallowTracer().trace(module)
        env: dict[str, object] = {}
        placeholders = 0
        result = None
        for node in graph.nodes:
            args = [env.get(a.name) for a in node.all_input_nodes]
            if node.op == "placeholder":
                env[node.name] = rf if placeholders == 0 else None
                placeholders += 1
            elif node.op == "get_attr":
                env[node.name] = None
            elif node.op == "call_module":
                name = f"{prefix}.{node.target}" if prefix else node.target
                child = module.get_submodule(node.target)
                env[node.name] = _propagate(child, _union(args[:1]), name, out)
            elif node.op == "call_function":
                env[node.name] = _function_rule(node, args)
            elif node.op == "call_method":
                env[node.name] = _method_rule(node, args)
            elif node.op == "output":
                result = _union(args)
    if prefix:
        out[prefix] = result
    return result


def _has_own_forward_logic(module: nn.Module) -> bool:
    return not type(module).__module__.startswith("torch.nn")


def _function_rule(node: torch.fx.Node, args: list):
    fn = node.target
    rf = _union(args)
    if rf is None or rf == GLOBAL:
        return rf
    if fn is F.pad:
        pad = node.args[1] if len(node.args) > 1 else node.kwargs["pad"]
        left, top = int(pad[0]), int(pad[2]) if len(pad) > 2 else 0
        rows, cols = rf
        return (Span(rows.jump, rows.lo - top * rows.jump, rows.hi - top * rows.jump),
                Span(cols.jump, cols.lo - left * cols.jump, cols.hi - left * cols.jump))
    if fn in (F.max_pool2d, F.avg_pool2d):
        k = _pair(node.args[1] if len(node.args) > 1 else node.kwargs["kernel_size"])
        s = _pair(node.kwargs.get("stride") or (node.args[2] if len(node.args) > 2 else k))
        p = _pair(node.kwargs.get("padding", node.args[3] if len(node.args) > 3 else 0))
        return (rf[0].conv(k[0], s[0], p[0]), rf[1].conv(k[1], s[1], p[1]))
    if fn in _GLOBAL_FNS:
        return GLOBAL
    if fn in _ELEMENTWISE or fn is getattr:
        return rf
    raise NotImplementedError(f"no receptive-field rule for {getattr(fn, '__name__', fn)}")


def _method_rule(node: torch.fx.Node, args: list):
    rf = _union(args)
    if rf is None or rf == GLOBAL or node.target == "size":
        return None if node.target == "size" else rf
    if node.target in _GLOBAL_METHODS:
        return GLOBAL
    if node.target in _ELEMENTWISE_METHODS:
        return rf
    raise NotImplementedError(f"no receptive-field rule for tensor.{node.target}()")


_CACHE: dict[str, dict[str, object]] = {}  # by the model's repr: the same layer stack has the same fields
_TRACE_LOCK = threading.Lock()


def theoretical_fields(model: nn.Module) -> dict[str, object]:
    """Receptive field of every submodule's output (dotted name -> (Span rows, Span cols) or ``GLOBAL``),
    in 28 x 28 input coordinates, computed statically from the module graph.

    Cached by ``repr(model)`` (every kernel, stride and padding), so a fine-tuned copy of a network reuses
    its fields. Tracing patches ``nn.Module.__call__`` process-wide while it runs, which breaks forward
    passes in other threads: trace every served network before serving (:func:`prepare_fields`)."""
    key = repr(model)
    with _TRACE_LOCK:
        if key not in _CACHE:
            out: dict[str, object] = {}
            _propagate(model, (Span(1, 0, 0), Span(1, 0, 0)), "", out)
            _CACHE[key] = out
        return _CACHE[key]


def prepare_fields(models) -> None:
    """Trace ``models`` (and a stack of 3x3 convs) now, before any request runs a forward pass."""
    for model in models:
        theoretical_fields(model)
    stacked_3x3()


def stacked_3x3(n: int = 3) -> list[int]:
    """Receptive-field side after each of ``n`` stacked 3x3 convs (seed 000: 3, 5, 7, ...)."""
    fields = theoretical_fields(nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n)]))
    return [fields[str(i)][0].size for i in range(n)]


def resolve_layer(model: nn.Module, layer: str | None) -> str:
    """The full dotted name of a visual layer (as :func:`~cnndemo.inspection.analysis.find` reads it);
    ``None``/``""`` = the first one. ``UnknownLayer`` (a LookupError listing the choices) otherwise."""
    layers = visual_layers(model)
    return find(layers, layer).name if layer else layers[0].name


@dataclass
class UnitField:
    """One unit's receptive field: ``box`` is [top, left, bottom, right) clipped to the 28 x 28 input;
    ``rf_size`` the unclipped theoretical side; ``effective`` the 28 x 28 |d unit / d input|, max 1."""

    layer: str
    row: int
    col: int
    rf_size: int
    box: tuple[int, int, int, int]
    effective: torch.Tensor
    map_size: tuple[int, int]


def unit_box(rf, row: int, col: int, side: int = SIDE) -> tuple[int, int, int, int]:
    """[top, left, bottom, right) of unit (row, col), clipped to the side x side input."""
    rows, cols = rf
    top, left = rows.lo + row * rows.jump, cols.lo + col * cols.jump
    bottom, right = rows.hi + row * rows.jump + 1, cols.hi + col * cols.jump + 1
    clip = lambda v: max(0, min(side, v))  # noqa: E731
    return clip(top), clip(left), clip(bottom), clip(right)


def layer_field(model: nn.Module, layer: str | None):
    """(full name, theoretical receptive field) of a visual layer."""
    name = resolve_layer(model, layer)
    return name, theoretical_fields(model)[name]


def rf_table(model: nn.Module) -> list[tuple[str, int, int]]:
    """(layer, receptive-field side, stride in input pixels) for every visual layer, in forward order."""
    fields = theoretical_fields(model)
    return [(vl.name, fields[vl.name][0].size, fields[vl.name][0].jump) for vl in visual_layers(model)
            if fields.get(vl.name) not in (None, GLOBAL)]


def receptive_field(model: nn.Module, x: torch.Tensor, layer: str | None, row: int, col: int) -> UnitField:
    """Theoretical box and effective field (input gradient, summed over channels) of unit (row, col)
    of ``layer`` for input ``x`` (1 x 1 x 28 x 28). LookupError / ValueError for a bad layer or position."""
    name, rf = layer_field(model, layer)
    module = model.get_submodule(name)
    x = x.detach().to(model_device(model)).clone().requires_grad_(True)
    seen: dict[str, torch.Tensor] = {}
    # Not hooks.capture: that one detaches what it records, and the gradient needs the live activation. Like it,
    # this records only this thread's pass: other requests run forward passes through the same shared model.
    owner = threading.get_ident()

    def hook(_m, _a, out):
        if threading.get_ident() == owner:
            seen["out"] = out

    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            model(x)
            act = seen["out"]  # 1 x C x H x W, still in the graph
            h, w = act.shape[-2:]
            for value, limit, what in ((row, h, "row"), (col, w, "col")):
                if not isinstance(value, int) or not 0 <= value < limit:
                    raise ValueError(f"{what} {value!r} is outside {short_name(name)}'s {h} x {w} map "
                                     f"(use 0..{limit - 1}).")
            (grad,) = torch.autograd.grad(act[0, :, row, col].sum(), x)
    finally:
        handle.remove()
    eff = grad[0, 0].abs().cpu()
    eff = eff / eff.max() if eff.max() > 0 else eff
    return UnitField(name, row, col, rf[0].size, unit_box(rf, row, col), eff, (int(h), int(w)))


def unit_at(model: nn.Module, layer: str | None, y: int, x: int, map_size: tuple[int, int]) -> tuple[int, int]:
    """The unit (row, col) of ``layer`` whose receptive field is centred nearest to input pixel (y, x)."""
    _name, (rows, cols) = layer_field(model, layer)
    pick = lambda v, s, n: max(0, min(n - 1, round((v - (s.lo + s.hi) / 2) / s.jump)))  # noqa: E731
    return pick(y, rows, map_size[0]), pick(x, cols, map_size[1])
