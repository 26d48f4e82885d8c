"""Timings of the Labs tab, through the tab's own handlers (what a browser or the API gets, minus HTTP):

* the bottleneck calculator's answer time (``/bottleneck``: core + table + chart), first call and cached;
* the gradient lab's default run (``/gradient_flow`` with no arguments): wall time, and the longest gap
  between two screen updates (including rendering the figure to PNG, as Gradio does);
* teaching 30 drawings (3 per digit, a hollow-digit "hand" from ``tests/labs_hand.py``) per network.

    CNNDEMO_DATA=... python benchmarks/bench_labs.py [--archs residual_net,resnet18] [--threads N]

Also prints the machine's load average: on a shared machine the wall times grow with it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cnndemo.labs.bottleneck import bottleneck  # noqa: E402
from cnndemo.labs.tab import _api_bottleneck, _bottleneck_panel, _gradient_events, _teach_events  # noqa: E402
from cnndemo.labs.gradient_flow import LabSpec  # noqa: E402
from cnndemo.registry import ModelZoo  # noqa: E402
from labs_hand import write_hand  # noqa: E402


def png(fig) -> None:
    """Render a figure the way gr.Plot(format="png") does."""
    if fig is not None and hasattr(fig, "savefig"):
        fig.savefig(io.BytesIO(), format="png")


def bench_bottleneck() -> dict:
    t = time.perf_counter()
    bottleneck("googlenet_seed", "3a")  # first call builds the full-size model once (the tab does it at start-up)
    first = time.perf_counter() - t
    times = []
    for arch, module in [("googlenet_seed", "3a"), ("googlenet", "4e"), ("inception_net", "incep1")] * 5:
        t = time.perf_counter()
        report = _api_bottleneck(arch, module)
        table, fig = _bottleneck_panel(report)
        png(fig)
        times.append(time.perf_counter() - t)
    return {"first_build_s": round(first, 3), "answer_with_chart_max_s": round(max(times), 3),
            "answer_with_chart_median_s": round(sorted(times)[len(times) // 2], 3)}


def bench_gradient() -> dict:
    d = LabSpec()
    t0 = last = time.perf_counter()
    gaps, updates, final = [], 0, None
    for status, fig, result in _gradient_events(d.depth, d.width, d.steps, d.lr):
        png(fig)
        now = time.perf_counter()
        gaps.append(now - last)
        last, updates, final = now, updates + 1, result
    return {"depth": d.depth, "width": d.width, "steps": d.steps, "wall_s": round(time.perf_counter() - t0, 1),
            "updates": updates, "max_gap_s": round(max(gaps), 2),
            "plain_val_acc": final["plain"]["val_acc_after"], "residual_val_acc": final["residual"]["val_acc_after"],
            "plain_first_over_last_grad": final["plain"]["grad_norms"][0] / final["plain"]["grad_norms"][-1]}


def bench_teach(archs: list[str]) -> list[dict]:
    zoo = ModelZoo.load("cpu")
    folder = Path(tempfile.mkdtemp(prefix="bench-labs-"))
    paths, labels = write_hand(folder, 3, seed=3)  # 30 drawings
    rows = []
    for arch in archs:
        if not zoo.has(arch, "mnist"):
            continue
        t0 = last = time.perf_counter()
        gap, result = 0.0, None
        for status, comparison, res, store in _teach_events(zoo, paths, json.dumps(labels), arch, {}):
            now = time.perf_counter()
            gap, last, result = max(gap, now - last), now, res
        rows.append({"arch": arch, "drawings": len(paths), "wall_s": round(time.perf_counter() - t0, 1),
                     "max_gap_s": round(gap, 2), **{k: result[k] for k in ("yours_before", "yours_after",
                                                                              "mnist_before", "mnist_after")}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="residual_net,inception_net,resnet18,googlenet,vgg11")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, load average before {os.getloadavg()}")
    print("bottleneck:", bench_bottleneck())
    print("gradient lab (defaults):", bench_gradient())
    for row in bench_teach(args.archs.split(",")):
        print("teach 30 drawings:", row)
    print(f"load average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
