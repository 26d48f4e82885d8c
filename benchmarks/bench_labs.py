"""Timings of the Labs tab, through the tab's own handlers (what a browser or the API gets, minus HTTP):

* the bottleneck calculator's answer time (core + table + chart, as the GoogLeNet tab's accordion), first call
  and cached;
* the gradient lab's default run (``/gradient_flow`` with no arguments): wall time, and the longest gap
  between two screen updates (including rendering the figure to PNG, as Gradio does);
* teaching 30 drawings (3 per digit, a hollow-digit "hand" from ``tests/labs_hand.py``) per network.

    CNNDEMO_DATA=... python benchmarks/bench_labs.py [--archs ARCH,ARCH] [--rounds 3] [--threads N]

Each figure is the median over ``--rounds`` rounds (the spread is printed too). Also prints the machine's load
average: on a shared machine the wall times grow with it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cnndemo import catalog  # noqa: E402
from cnndemo.app.lab_panels import bottleneck_panel  # noqa: E402
from cnndemo.app.labs_streams import gradient_events, teach_events  # noqa: E402
from cnndemo.app.zoo import ModelZoo  # noqa: E402
from cnndemo.finetune.store import SessionModels  # noqa: E402
from cnndemo.labs.bottleneck import bottleneck_archs, module_names  # noqa: E402
from cnndemo.labs.gradient_flow import LabSpec  # noqa: E402
from cnndemo.labs.teach import DATASET  # noqa: E402
from labs_hand import write_hand  # noqa: E402


def png(fig) -> None:
    """Render a figure the way gr.Plot(format="png") does."""
    if fig is not None and hasattr(fig, "savefig"):
        fig.savefig(io.BytesIO(), format="png")


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def bench_bottleneck() -> dict:
    t = time.perf_counter()
    for name in bottleneck_archs():  # what the tab does at start-up: build each model once
        module_names(name)
    first = time.perf_counter() - t
    times = []
    for name in bottleneck_archs():
        arch, variant = (catalog.VARIANTS[name].arch, True) if name in catalog.VARIANTS else (name, False)
        for module in module_names(name)[:3] * 3:
            t = time.perf_counter()
            table, fig, report = bottleneck_panel(arch, module, variant)
            png(fig)
            times.append(time.perf_counter() - t)
    return {"build_all_models_s": round(first, 3), "answer_with_chart_s": spread(times)}


def bench_gradient(rounds: int) -> dict:
    d = LabSpec()
    walls, gaps, updates = [], [], []
    for _ in range(rounds):
        t0 = last = time.perf_counter()
        gap, n, final = 0.0, 0, None
        for status, fig, result in gradient_events(d.depth, d.width, d.steps, d.lr):
            png(fig)
            now = time.perf_counter()
            gap, last, n, final = max(gap, now - last), now, n + 1, result
        walls.append(time.perf_counter() - t0)
        gaps.append(gap)
        updates.append(n)
    g = final["plain"]["grad_norms"]
    return {"depth": d.depth, "width": d.width, "steps": d.steps, "wall_s": spread(walls), "longest_gap_s": spread(gaps),
            "updates": updates, "plain_first_over_last_grad": g[0] / g[-1], "status": status}


def bench_teach(archs: list[str], rounds: int) -> list[dict]:
    zoo = ModelZoo.load("cpu")
    folder = Path(tempfile.mkdtemp(prefix="bench-labs-"))
    paths, labels = write_hand(folder, 3, seed=3)  # 30 drawings
    rows = []
    for arch in archs:
        if not zoo.has(arch, DATASET):
            continue
        walls, gaps = [], []
        for _ in range(rounds):
            t0 = last = time.perf_counter()
            gap, result = 0.0, None
            for status, comparison, res in teach_events(zoo, paths, json.dumps(labels), arch, SessionModels()):
                now = time.perf_counter()
                gap, last, result = max(gap, now - last), now, res
            walls.append(time.perf_counter() - t0)
            gaps.append(gap)
        rows.append({"arch": arch, "drawings": len(paths), "wall_s": spread(walls), "longest_gap_s": spread(gaps),
                     **{k: round(result[k], 4) for k in ("yours_before", "yours_after", "mnist_before", "mnist_after")}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default=",".join(catalog.ARCHITECTURES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cores, load average before {os.getloadavg()}")
    print("bottleneck:", bench_bottleneck())
    print("gradient lab (defaults):", bench_gradient(args.rounds))
    for row in bench_teach(args.archs.split(","), args.rounds):
        print("teach 30 drawings:", row)
    print(f"load average after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
