"""Tolerate a torchvision whose compiled ops cannot load.

The pair ``torch==2.13.0`` + ``torchvision==0.28.0`` is what laptops and Spaces install.
Where pip resolves ``torch`` to a CPU-only build but ``torchvision`` to the CUDA build
(a common mismatch), torchvision's C++ extension (``_C.so``: nms, roi_align, ...)
fails to load, and ``import torchvision`` then dies in ``torchvision/_meta_registrations.py``
with ``RuntimeError: operator torchvision::nms does not exist``: that module registers
fake (meta) kernels for ``nms``/``qnms`` without first checking that the ops exist.

cnndemo never uses those ops. It needs the pure-Python parts: datasets, transforms,
utils and models. So, *before* torchvision is imported, :func:`ensure_torchvision`
tries to load the extension exactly as torchvision would; if that fails it puts an empty
stand-in for ``torchvision._meta_registrations`` into ``sys.modules`` (the only module that
crashes) and prints one warning line. Everything else in torchvision imports unchanged, and
its compiled ops raise torchvision's own clear "Couldn't load custom C++ ops" error if called.

With a matching pair, or without torchvision, this module does nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

_STATE: dict[str, object] = {"checked": False, "ops_loaded": None}

WARNING = (
    "cnndemo warning: torchvision's compiled ops could not be loaded ({reason}); "
    "torch {torch} and this torchvision build do not match. Datasets, transforms and models "
    "work; torchvision.ops (nms, roi_align, ...) and torchvision.io decoding do not."
)


def _extension_path() -> str | None:
    """Path of torchvision's ``_C`` extension, found without importing torchvision."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = list(spec.submodule_search_locations)[0]
    for name in os.listdir(folder):
        if name.startswith("_C.") and name.endswith((".so", ".pyd")):
            return os.path.join(folder, name)
    return None


def ensure_torchvision() -> bool | None:
    """Make ``import torchvision`` work; return whether its compiled ops loaded.

    Returns ``None`` when torchvision is not installed or was already imported
    (then nothing can or need be done), ``True`` for a healthy install, ``False``
    when the stand-in was installed and the warning printed. Idempotent.
    """
    if _STATE["checked"]:
        return _STATE["ops_loaded"]  # type: ignore[return-value]
    _STATE["checked"] = True
    if "torchvision" in sys.modules:
        return None
    path = _extension_path()
    if path is None:
        return None
    import torch

    try:
        torch.ops.load_library(path)
    except (OSError, ImportError, RuntimeError) as exc:
        stub = types.ModuleType("torchvision._meta_registrations")
        stub.__doc__ = "cnndemo.compat stand-in: torchvision's compiled ops are unavailable."
        sys.modules["torchvision._meta_registrations"] = stub
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        print(WARNING.format(reason=reason, torch=torch.__version__), file=sys.stderr)
        _STATE["ops_loaded"] = False
        return False
    _STATE["ops_loaded"] = True
    return True
