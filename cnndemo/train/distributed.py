"""Distributed data parallel on the existing loop: ``python -m cnndemo.train`` under ``torchrun --nproc_per_node N``.

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process group
(gloo on CPU, nccl on CUDA). Without torchrun everything here is a no-op and the loop runs as a single
process, exactly as before.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes in the run (1 without torchrun)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the process that prints and writes checkpoints."""
    return rank() == 0


def setup(device: torch.device) -> bool:
    """Join the process group when started by torchrun; True if this is a distributed run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def local_device(device: torch.device) -> torch.device:
    """One GPU per process under torchrun (``LOCAL_RANK``); the CPU stays the CPU."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(*values: float, device: torch.device | str = "cpu") -> list[float]:
    """The sums over all ranks of ``values`` (unchanged in a single process)."""
    if world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()
