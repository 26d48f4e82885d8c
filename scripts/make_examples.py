"""Write a few real test-set images per class of both datasets as small PNGs (committed in examples/).

Usage: ``CNNDEMO_DATA=... python scripts/make_examples.py [--per-class 5]``.
Files: ``examples/{dataset}/{class index}_{class slug}_{test index}.png`` (28 x 28 grey, white on black,
exactly the test image). The first ``per_class`` test images of each class are taken, so the
choice is reproducible and unbiased (no cherry-picking by the model's answer).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import sys

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnndemo.catalog import CLASSES  # noqa: E402
from cnndemo.data.datasets import load_tensors  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "examples"


def slug(name: str) -> str:
    """'T-shirt/top' -> 't-shirt-top'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=5)
    args = parser.parse_args()
    for dataset, classes in CLASSES.items():
        images, labels = load_tensors(dataset, train=False)
        folder = OUT / dataset
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        for c, name in enumerate(classes):
            idx = (labels == c).nonzero().flatten()[: args.per_class].tolist()
            for i in idx:
                Image.fromarray(images[i].numpy(), mode="L").save(folder / f"{c}_{slug(name)}_{i:04d}.png", optimize=True)
        print(f"{dataset}: {len(list(folder.glob('*.png')))} images in {folder}")


if __name__ == "__main__":
    main()
