"""cnndemo: classic CNNs (VGG, GoogLeNet, ResNet and two course nets) on MNIST and Fashion-MNIST.

Parts: ``catalog`` (what exists), ``models``, ``data``, ``train``, ``inspection``, ``finetune``, ``app``.

Public API::

    from cnndemo import list_pretrained, load_pretrained
    arch, dataset = list_pretrained()[0]
    model, meta = load_pretrained(arch, dataset)
"""

from cnndemo import zerogpu  # noqa: F401  - first: ZeroGPU needs `import spaces` before torch/CUDA
from cnndemo.compat import ensure_torchvision

ensure_torchvision()  # must run before anything imports torchvision

__all__ = ["list_pretrained", "load_pretrained"]


def __getattr__(name: str):
    """Import the checkpoint API on first use, so ``import cnndemo.models`` stays light."""
    if name in __all__:
        from cnndemo.train import checkpoints

        return getattr(checkpoints, name)
    raise AttributeError(f"module 'cnndemo' has no attribute {name!r}")
