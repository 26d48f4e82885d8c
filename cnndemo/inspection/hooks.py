"""The one hook-capture helper: record what chosen submodules receive and return during a forward pass.

Plain torch. Hooked tensors are detached, cloned and moved to the CPU at once, so a later in-place
operation cannot overwrite them. Hooks only record calls made from the thread that installed them,
so concurrent requests sharing one model do not mix.
"""

from __future__ import annotations

import threading
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
