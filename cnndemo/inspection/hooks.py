"""The one hook-capture helper: record what chosen submodules receive and return during a forward pass.

Plain torch. Hooked tensors are detached, cloned and moved to the CPU at once, so a later in-place
operation cannot overwrite them. Hooks only record calls made from the thread that installed them,
so concurrent requests sharing one model do not mix. :func:`private_view` is for hooks that are not ours (Captum's):
a copy of the module tree that shares the model's weights, whose hooks see only the passes through it.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def capture(model: nn.Module, names: Iterable[str], inputs: Iterable[str] = ()) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the submodules ``names`` (and the inputs of ``inputs``, as ``name + ":in"``).

    Usage::

        with capture(model, ["net.conv1"]) as seen:
            model(x)
        seen["net.conv1"]  # CPU float tensor, a clone
    """
    owner = threading.get_ident()
    seen: dict[str, torch.Tensor] = {}
    handles = []
    wanted_in = set(inputs)
    for name in dict.fromkeys([*names, *wanted_in]):
        module = model.get_submodule(name)

        def hook(_m, args, output, name=name):
            if threading.get_ident() != owner:
                return
            seen[name] = output.detach().float().cpu().clone()
            if name in wanted_in:
                seen[name + ":in"] = args[0].detach().float().cpu().clone()

        handles.append(module.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def private_view(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s modules that shares its parameters and buffers (no tensor is copied) and has no hooks:
    hooks put on it (Captum's, say) see only forward passes through it, never another thread's pass through the
    shared model, and its answers are bit-identical to the model's. A few hundred microseconds."""
    view = copy.copy(model)  # a new object with a new __dict__ holding the same values
    view._modules = OrderedDict((name, None if child is None else private_view(child))
                                for name, child in model._modules.items())
    for name, value in list(vars(view).items()):
        if "hooks" in name and isinstance(value, dict):
            setattr(view, name, OrderedDict())  # the model's hooks (and their registrations) stay on the model
    return view
