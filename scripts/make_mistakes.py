"""Compute each pretrained model's confusion matrix and misclassified test images, once.

    python scripts/make_mistakes.py [--arch vgg11 ...] [--dataset mnist ...]

Writes ``checkpoints/mistakes/{arch}_{dataset}.npz`` (a few hundred KB at most) for every pretrained
checkpoint, and checks the accuracy against the checkpoint's own metadata. Needs the test sets
(``python -m cnndemo.data prepare``); the app then needs only the small files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from cnndemo.data.datasets import load_test  # noqa: E402
from cnndemo.insight.mistakes import compute_mistakes, mistakes_path, save_mistakes  # noqa: E402
from cnndemo.train.checkpoints import list_pretrained, load_pretrained  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", help="only these architectures")
    parser.add_argument("--dataset", nargs="*", help="only these datasets")
    args = parser.parse_args(argv)
    tests = {}
    status = 0
    for arch, dataset in list_pretrained():
        if (args.arch and arch not in args.arch) or (args.dataset and dataset not in args.dataset):
            continue
        t0 = time.perf_counter()
        model, meta = load_pretrained(arch, dataset, device="cpu")
        test = tests.setdefault(dataset, load_test(dataset))
        m = compute_mistakes(model, test)
        path = save_mistakes(mistakes_path(arch, dataset), m)
        stored = meta.get("test_accuracy")
        ok = stored is None or abs(m.test_accuracy - stored) < 1e-9
        status |= 0 if ok else 1
        print(f"{arch:14s} {dataset:14s} accuracy {m.test_accuracy:.4f} (metadata {stored}) "
              f"{m.total_misclassified:4d} mistakes  {path.stat().st_size / 1024:6.1f} KB  "
              f"{time.perf_counter() - t0:5.1f} s{'' if ok else '  MISMATCH'}", flush=True)
    return status


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
