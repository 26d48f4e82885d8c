"""Compare all networks: run one input through every model of a dataset at once.

For each model: the top class and its confidence, the parameters and multiply-adds (torchinfo, the
summary the network tabs show, cached per model) and the measured forward time; plus whether
the networks agree. Plain torch + torchinfo: no gradio, no matplotlib.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from cnndemo.inspection.analysis import model_summary
from cnndemo.train.evaluation import model_device


@dataclass
class ModelResult:
    """One network's answer for the input."""

    arch: str
    label: str
    index: int
    confidence: float
    params: int
    macs: int
    ms: float
    probs: torch.Tensor

    def as_dict(self) -> dict:
        return {"arch": self.arch, "label": self.label, "confidence": round(self.confidence, 6),
                "params": self.params, "macs": self.macs, "ms": round(self.ms, 3)}


def model_cost(model: nn.Module) -> tuple[int, int]:
    """(parameters, multiply-adds) for one 1 x 1 x 28 x 28 input, from the cached torchinfo summary."""
    stats = model_summary(model)
    return int(stats.total_params), int(stats.total_mult_adds)


@torch.no_grad()
def timed_forward(model: nn.Module, x: torch.Tensor, repeats: int = 3) -> tuple[torch.Tensor, float]:
    """(softmax probabilities, median forward time in ms over ``repeats`` passes) for one input."""
    x = x.to(model_device(model))
    times, logits = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        logits = model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return torch.softmax(logits.float(), 1)[0].cpu(), statistics.median(times)


def compare_models(models: dict[str, nn.Module], x: torch.Tensor, classes: list[str], repeats: int = 3) -> list[ModelResult]:
    """Run ``x`` (1 x 1 x 28 x 28) through every model of ``models`` (arch -> model, in display order)."""
    if tuple(x.shape) != (1, 1, 28, 28):
        raise ValueError(f"Expected one 1 x 1 x 28 x 28 image, got {tuple(x.shape)}.")
    if not models:
        raise LookupError("No pretrained model is loaded for this dataset.")
    out = []
    for arch, model in models.items():
        probs, ms = timed_forward(model, x, repeats)
        params, macs = model_cost(model)
        index = int(probs.argmax())
        out.append(ModelResult(arch, classes[index], index, float(probs[index]), params, macs, ms, probs))
    return out


def agreement(results: list[ModelResult]) -> bool:
    """True when every network predicts the same class."""
    return len({r.index for r in results}) <= 1


def compare_json(results: list[ModelResult]) -> dict:
    """``{"models": [{"arch","label","confidence","params","macs","ms"}, ...], "agree": bool}``."""
    return {"models": [r.as_dict() for r in results], "agree": agreement(results),
            "labels": sorted({r.label for r in results})}
