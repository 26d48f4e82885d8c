"""Speed of the "Why?" tab's four views, per network, at default settings (CPU unless CNNDEMO_DEVICE).

    python benchmarks/bench_insight.py [--dataset mnist] [--rounds 7]

Prints the median wall time and, in brackets, the median CPU time (ms) of: compare (all networks of the
dataset, warm: torchinfo figures cached), then per architecture saliency with each method, the receptive
field of a middle unit of the first layer, and one page of test-set mistakes with the confusion matrix.
Each view runs once to warm up first. The input is a real test image from examples/ (no dataset needed).
Side by side, the floor in the same run: a bare PyTorch forward pass of the same model on the same framed input,
and a bare forward + backward to the input (what every gradient method needs at least once).
The machine's load average is printed before and after: on a shared CPU, wall times follow it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cnndemo import catalog  # noqa: E402
from cnndemo.app import insight_views as service  # noqa: E402
from cnndemo.app.zoo import ModelZoo  # noqa: E402
from cnndemo.data.framing import prepare  # noqa: E402
from cnndemo.device import device_name  # noqa: E402
from cnndemo.insight.attribution import METHODS  # noqa: E402
from cnndemo.insight.mistakes import load_mistakes  # noqa: E402
from cnndemo.insight.receptive_field import resolve_layer  # noqa: E402
from cnndemo.insight.render import confusion_image  # noqa: E402
from cnndemo.inspection.analysis import layer_shapes  # noqa: E402


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def median_ms(fn, rounds: int) -> str:
    """``"wall (cpu)"``: median wall time and median process CPU time of ``fn`` in ms. On a shared machine the
    CPU time is the steadier figure (with --threads 1 it is what one idle core would take)."""
    fn()  # warm-up (caches, first-call allocations)
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return f"{statistics.median(wall):.0f} ({statistics.median(cpu):.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    zoo = ModelZoo.load()
    image = str(sorted((ROOT / "examples" / args.dataset).glob("*.png"))[0])
    print(f"{cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{device_name(zoo.device)}; dataset {args.dataset}; median of {args.rounds} rounds, ms; "
          f"load average before {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    service.compare_view(zoo, image, args.dataset)
    print(f"compare, first call (torchinfo for every model): {(time.perf_counter() - t0) * 1e3:.0f} ms")
    compare = median_ms(lambda: service.compare_view(zoo, image, args.dataset), args.rounds)
    print(f"compare (all networks, 3 timed passes each): {compare}")
    header = ["arch", "floor: forward", "floor: forward + backward", *METHODS, "receptive_field", "misclassified"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for arch in catalog.ARCHITECTURES:
        if not zoo.has(arch, args.dataset):
            continue
        model, _ = zoo.get(arch, args.dataset)
        x = prepare(image, args.dataset).tensor.to(zoo.device)

        def forward():
            with torch.no_grad():
                model(x)

        def forward_backward():
            xi = x.clone().requires_grad_(True)
            model(xi).max().backward()

        row = [arch, median_ms(forward, args.rounds), median_ms(forward_backward, args.rounds)]
        for method in METHODS:
            row.append(median_ms(lambda: service.saliency_view(zoo, image, arch, args.dataset, method), args.rounds))
        layer = resolve_layer(model, None)
        h, w = layer_shapes(model)[layer][-2:]
        row.append(median_ms(lambda: service.receptive_field_view(zoo, image, arch, args.dataset, layer, h // 2, w // 2),
                             args.rounds))
        row.append(median_ms(lambda: (service.misclassified_view(arch, args.dataset, 1),
                                      confusion_image(load_mistakes(arch, args.dataset).confusion,
                                                      catalog.dataset(args.dataset).classes)), args.rounds))
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
