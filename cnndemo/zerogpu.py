"""Hugging Face ZeroGPU support: ``import spaces`` first, and a ``gpu`` decorator that is a no-op locally.

ZeroGPU (Spaces hardware "ZeroGPU") attaches a GPU only while a function decorated with
``spaces.GPU`` runs, in a forked worker; ``spaces`` must therefore be imported before
anything initialises CUDA. ``cnndemo/__init__.py`` imports this module *first*, so any
``import cnndemo...`` (the app, the fine-tune tab, the CLI) imports ``spaces`` before torch
is even imported. Without the ``spaces`` package (laptops, CI, plain GPU servers) nothing
changes: :func:`gpu` returns the function unchanged.

Rules for a function run under :func:`gpu` (they hold locally too, so the same code runs
in both places): arguments and results/yielded values are picklable plain data (CPU
tensors, numbers, dicts); never CUDA tensors; no ``threading.Event`` shared with the
caller (use a file-backed flag, see ``cnndemo.finetune.StopSignal``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:  # must stay the first import of cnndemo (see module docstring)
    spaces: Any = importlib.import_module("spaces")
except ImportError:
    spaces = None
if spaces is not None and not hasattr(spaces, "GPU"):  # e.g. a stray local folder named spaces/
    spaces = None


def available() -> bool:
    """Whether the ``spaces`` package was importable (on Hugging Face Spaces)."""
    return spaces is not None


def gpu(fn: F, duration: int | Callable[..., int] = 60) -> F:
    """``spaces.GPU(duration=duration)(fn)`` when ``spaces`` is importable, else ``fn`` itself.

    ``duration`` is seconds, or a callable taking the same arguments as ``fn`` and returning
    seconds (ZeroGPU's dynamic duration). The ``spaces`` decorator is a no-op on Spaces
    without ZeroGPU hardware.
    """
    if spaces is None:
        return fn
    return spaces.GPU(duration=duration)(fn)
