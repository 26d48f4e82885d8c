"""The requests of the load and soak tests, and how each answer is checked.

A :class:`Work` item is one call (endpoint, example image, arguments). Before any load the app
answers every item once, one at a time: that is the *reference* (the pretrained prediction, known
before the load; for ``/classify`` only examples the model gets right are used). Under load each
answer must pass the endpoint's own checks (feature-map shape = channel count, branch channels
add up to ``out_channels`` ...) and equal its reference exactly (file paths aside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradio_client import Client, handle_file

from benchmarks.loadtest.app_control import EXAMPLES

CLASS_NAMES = {"mnist": [str(i) for i in range(10)],
               "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                 "Bag", "Ankle boot"]}
ARCHS = ("vgg11", "googlenet", "resnet18", "inception_net", "residual_net")


@dataclass(frozen=True)
class Work:
    api: str
    image: str
    args: tuple  # after the image
    truth: str  # the example's true class name

    @property
    def key(self) -> str:
        return f"{self.api} {Path(self.image).name} {self.args}"


def examples(dataset: str, per_class: int = 1) -> list[tuple[str, str]]:
    """(path, true class name) of the first ``per_class`` committed examples of each class."""
    out = []
    for cls in range(10):
        for path in sorted((EXAMPLES / dataset).glob(f"{cls}_*.png"))[:per_class]:
            out.append((str(path), CLASS_NAMES[dataset][cls]))
    return out


def work_items() -> list[Work]:
    """The mix: /classify on all five networks, plus the three inspection endpoints, on real test images."""
    items: list[Work] = []
    for dataset in ("mnist", "fashion_mnist"):
        for i, (path, truth) in enumerate(examples(dataset)):
            items += [Work("/classify", path, (arch, dataset), truth) for arch in ARCHS]
            items.append(Work("/feature_maps", path, (ARCHS[i % 5], dataset, ""), truth))
            items.append(Work("/inception_branches", path, (("googlenet", "inception_net")[i % 2], dataset, ""), truth))
            items.append(Work("/residual_blocks", path, (("resnet18", "residual_net")[i % 2], dataset), truth))
    return items


def call(client: Client, work: Work) -> Any:
    return client.predict(handle_file(work.image), *work.args, api_name=work.api)


def normalise(work: Work, result: Any) -> Any:
    """The comparable part of an answer (PNG paths dropped: each call writes new files)."""
    if work.api == "/classify":
        return result
    if work.api == "/inception_branches":
        gallery, info = result
        return [g.get("caption") for g in gallery], info
    return result[1]


def check(work: Work, result: Any) -> str | None:
    """The endpoint's own checks of one answer; None when it is right."""
    if work.api == "/classify":
        conf = result.get("confidences", [])
        if len(conf) != 5 or result["label"] != conf[0]["label"] or result["label"] not in CLASS_NAMES[work.args[1]]:
            return f"bad Label {str(result)[:200]}"
        if any(a["confidence"] < b["confidence"] for a, b in zip(conf, conf[1:])):
            return "confidences not best first"
        return None
    if work.api == "/feature_maps":
        grid, info = result
        maxes = [c["max"] for c in info["channels"]]
        if not Path(grid).is_file() or len(info["shape"]) != 3 or len(maxes) != info["shape"][0]:
            return f"feature maps: shape {info.get('shape')} vs {len(maxes)} channels"
        return None if maxes == sorted(maxes, reverse=True) else "channels not strongest first"
    if work.api == "/inception_branches":
        gallery, info = result
        if len(gallery) != 4 or sum(b["channels"] for b in info["branches"]) != info["out_channels"]:
            return f"branches do not add up: {info}"
        return None if abs(sum(b["energy_share"] for b in info["branches"]) - 1) < 1e-3 else "energy shares != 1"
    fig, info = result
    blocks = info.get("blocks", [])
    if not Path(fig).is_file() or not blocks or not all(math.isfinite(b["ratio"]) and b["ratio"] >= 0 for b in blocks):
        return f"residual blocks: {str(info)[:200]}"
    return None


def references(url: str, items: list[Work]) -> tuple[dict[str, Any], list[Work]]:
    """(reference answer per key, the items to use): each item answered once, sequentially, and checked.

    ``/classify`` items whose reference is not the true class are dropped (their answer is not "known correct").
    """
    client = Client(url, verbose=False)
    refs, keep = {}, []
    for work in items:
        result = call(client, work)
        problem = check(work, result)
        if problem:
            raise AssertionError(f"{work.key}: {problem} (before any load)")
        if work.api == "/classify" and result["label"] != work.truth:
            continue
        refs[work.key] = normalise(work, result)
        keep.append(work)
    return refs, keep


def verify(work: Work, result: Any, refs: dict[str, Any]) -> str | None:
    """None when ``result`` passes the checks and equals the reference."""
    problem = check(work, result)
    if problem:
        return problem
    if normalise(work, result) != refs[work.key]:
        return f"differs from the reference: {str(normalise(work, result))[:200]}"
    return None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation, as numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
