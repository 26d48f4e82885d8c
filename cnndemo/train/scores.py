"""Evaluate every pretrained checkpoint: full test-set accuracy, parameters, file size, CPU batch-1 latency.

    python -m cnndemo.train.scores [--runs 200] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from cnndemo import catalog
from cnndemo.data.datasets import load_test
from cnndemo.train.checkpoints import checkpoint_path, list_pretrained, load_pretrained
from cnndemo.train.evaluation import evaluate

# Accuracy bars the committed checkpoints must meet (fractions of the 10,000 test images), from the catalog.
ACCURACY_BARS: dict[tuple[str, str], float] = {(a, d): catalog.arch(a).bars[d] for a, d in catalog.pairs()}


@torch.inference_mode()
def batch1_latency_ms(model: torch.nn.Module, runs: int = 200, warmup: int = 20) -> float:
    """Median wall time of one forward pass of a single 1 x 1 x 28 x 28 image, in milliseconds."""
    x = torch.rand(1, 1, 28, 28, device=next(model.parameters()).device)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def rows(runs: int = 200) -> list[dict]:
    """One dict per pretrained pair: arch, dataset, accuracy (measured and stored), bar, params, MB, ms."""
    out, tests = [], {}
    for arch, dataset in list_pretrained():
        model, meta = load_pretrained(arch, dataset, device="cpu")
        tests.setdefault(dataset, load_test(dataset))
        acc, _ = evaluate(model, tests[dataset])
        out.append({
            "arch": arch, "dataset": dataset, "test_accuracy": acc, "stored_accuracy": meta["test_accuracy"],
            "bar": ACCURACY_BARS[(arch, dataset)], "params": meta["params"],
            "size_mb": checkpoint_path(arch, dataset).stat().st_size / 2**20,
            "latency_ms": batch1_latency_ms(model, runs), "epochs": meta["epochs"],
            "train_seconds": meta["train_seconds"], "trained_on": meta["trained_on"],
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnndemo.train.scores", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 forward passes per model")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    from cnndemo.device import device_name

    print(f"torch {torch.__version__}; latency on {device_name(torch.device('cpu'))}")
    header = ["arch", "dataset", "test acc", "bar", "params", "file MB", "batch-1 ms", "epochs", "train time", "trained on"]
    table = [[r["arch"], r["dataset"], f"{100 * r['test_accuracy']:.2f}%", f"{100 * r['bar']:.1f}%",
              f"{r['params']:,}", f"{r['size_mb']:.2f}", f"{r['latency_ms']:.2f}", str(r["epochs"]),
              f"{r['train_seconds'] / 60:.1f} min", r["trained_on"]] for r in rows(args.runs)]
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)] if table else []
        for row in [header, *table]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
