"""Device choice, a human-readable description of it, and the CPU threads one interactive forward pass uses."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from collections.abc import Iterator

import torch

# One 28 x 28 image at a time is latency-bound: its ops are too small to gain from intra-op threads, and on a
# busy 2-core machine two OpenMP threads waiting on each other made a GoogLeNet pass 15x slower (BENCHMARKS.md).
INFERENCE_THREADS = int(os.environ.get("CNNDEMO_INFERENCE_THREADS", "1"))
_THREADS_LOCK = threading.Lock()


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


@contextlib.contextmanager
def inference_threads(device: torch.device, n: int | None = None) -> Iterator[None]:
    """Run a batch-1 forward pass on ``n`` CPU threads (default :data:`INFERENCE_THREADS`; 0 = leave as is), then
    restore the previous count (training keeps all its threads). Does nothing off the CPU."""
    n = INFERENCE_THREADS if n is None else n
    if device.type != "cpu" or n <= 0:
        yield
        return
    # One pass at a time changes the count: two interleaved set/restore pairs would leave the process on the wrong
    # count, and torch's thread pools are not meant to be resized while another thread resizes them.
    with _THREADS_LOCK:
        before = torch.get_num_threads()
        if n != before:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if n != before:
                torch.set_num_threads(before)
