"""Device choice and a human-readable description of it."""

from __future__ import annotations

import os
import platform

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``$CNNDEMO_DEVICE`` if set, else ``device`` if given, else CUDA, then MPS, then CPU."""
    choice = os.environ.get("CNNDEMO_DEVICE") or device
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """E.g. 'NVIDIA H100 80GB HBM3' or 'CPU: AMD EPYC 7B13 (2 threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU: {_cpu_name()} ({torch.get_num_threads()} threads)"
