"""Benchmark of the fine-tune tab: training throughput with the streaming UI vs a bare PyTorch loop, and the
wall time of the default fine-tune.

    CNNDEMO_DATA=... python benchmarks/bench_finetune.py [--repeats 3] [--markdown]

Same model (the default spec's network, from the same random initialisation), same batch size, same
training subset, same optimizer and schedule, same process, runs interleaved:

* ``bare loop``  - a plain PyTorch loop: index a batch, forward, cross-entropy, backward, step;
* ``train_iter`` - the shared loop alone (what the CLI runs), events discarded;
* ``tab, in-process`` - the tab's handler (``cnndemo.ui_finetune.finetune_events``) with Gradio's own
  postprocessing of every streamed output (figures to PNG, gallery images written), no HTTP;
* ``tab over HTTP`` - the real ``/finetune`` endpoint of a standalone tab server via ``gradio_client``.

Images/second = training images / time spent in the training epochs (for the tab: including the time the
loop is paused while each progress update is rendered and sent; held-out evaluation excluded everywhere).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cnndemo.device import device_name, pick_device  # noqa: E402
from cnndemo.finetune import FineTuneSpec, StartPoint, build_start_model, cached_splits  # noqa: E402
from cnndemo.models import DEMO_CONFIGS  # noqa: E402
from cnndemo.data import MEAN_STD  # noqa: E402
from cnndemo.train import augment_batch, make_optimizer, make_schedule, run, to_float, train_iter, uses_channels_last  # noqa: E402


def fresh_model(spec: FineTuneSpec, device: torch.device):
    """The spec's network from the same random initialisation every time."""
    start = StartPoint(None, DEMO_CONFIGS[spec.arch], MEAN_STD[spec.dataset], "random initialisation")
    return build_start_model(spec, start, device)


def bare_loop(spec: FineTuneSpec) -> float:
    """Images/second of a plain PyTorch training loop (no events, no evaluation, no .item())."""
    device = pick_device()
    model = fresh_model(spec, device)
    train, _ = cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)
    train = train.to(device)
    recipe = spec.recipe()
    if uses_channels_last(model):
        model.to(memory_format=torch.channels_last)
    steps = -(-len(train) // recipe.batch_size)
    opt = make_optimizer(model.parameters(), recipe)
    sched = make_schedule(opt, recipe, steps * recipe.epochs)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    model.train()
    t0 = time.perf_counter()
    for _ in range(recipe.epochs):
        perm = torch.randperm(len(train), device=device, generator=gen)
        for i in range(steps):
            idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x, y = to_float(train.images[idx]), train.labels[idx]
            if recipe.augment:
                x = augment_batch(x, flip=False, generator=gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(train) * recipe.epochs / (time.perf_counter() - t0)


def shared_loop(spec: FineTuneSpec) -> float:
    """Images/second of ``train_iter`` alone (as the CLI drives it, events discarded)."""
    device = pick_device()
    train, val = cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)
    result = run(train_iter(fresh_model(spec, device), train, val, spec.recipe(), keep="last"))
    return result.images_per_sec


def tab_in_process(spec: FineTuneSpec) -> tuple[float, float]:
    """(images/second, wall seconds) of the tab's handler with Gradio postprocessing of every output."""
    import gradio as gr

    from cnndemo.finetune_sessions import DeviceQueue, SessionRegistry
    from cnndemo.ui_finetune import OUTPUT_NAMES, finetune_events
    from finetune_standalone import StubModels

    components = {"curves": gr.Plot(format="png"), "confusion": gr.Plot(format="png"),
                  "features": gr.Gallery(format="png"), "metrics": gr.JSON(), "progress": gr.HTML(),
                  "status": gr.Markdown(), "accuracies": gr.Markdown(), "comparison": gr.Markdown(),
                  "checkpoint": gr.File()}
    t0 = time.perf_counter()
    metrics = None
    for out in finetune_events(spec, f"bench-{time.time()}", StubModels(), registry=SessionRegistry(),
                               queue=DeviceQueue()):
        for name, value in zip(OUTPUT_NAMES, out):
            if not (isinstance(value, dict) and value.get("__type__") == "update") and value is not None:
                components[name].postprocess(value)
        metrics = out[-1]
    wall = time.perf_counter() - t0
    assert metrics["phase"] == "done", metrics
    return metrics["images_per_sec"], wall


def tab_over_http(spec: FineTuneSpec, client) -> tuple[float, float, int]:
    """(images/second, wall seconds from submit to the final update, number of updates) over HTTP."""
    t0 = time.perf_counter()
    job = client.submit(spec.arch, spec.dataset, spec.start, spec.epochs, spec.lr, spec.batch_size, spec.optimizer,
                        spec.subset, spec.augment, spec.freeze, api_name="/finetune")
    final = job.result()
    wall = time.perf_counter() - t0
    metrics = final[-1]
    assert metrics["phase"] == "done", metrics
    return metrics["images_per_sec"], wall, len(job.outputs())


def background_training() -> bool:
    """Whether a ``cnndemo.train`` process is running on this machine."""
    return subprocess.run(["pgrep", "-f", "cnndemo.train"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each round runs every path once")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = FineTuneSpec().validate()
    cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)  # load the data once, outside the timings
    busy = background_training()
    print(f"device: {device_name(pick_device())}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"default spec: {spec}")
    if busy:
        print("NOTE: measured while training ran in the background (cnndemo.train processes present)")

    client = demo = None
    if not args.no_http:
        from gradio_client import Client

        from finetune_standalone import StubModels, build_standalone, free_port

        demo, _, _ = build_standalone(StubModels())
        demo.queue()
        _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
        client = Client(url, verbose=False)
    paths = ["bare loop", "train_iter", "tab, in-process"] + ([] if client is None else ["tab over HTTP"])
    ips: dict[str, list[float]] = {p: [] for p in paths}
    walls: dict[str, list[float]] = {p: [] for p in paths}
    ratios: dict[str, list[float]] = {p: [] for p in paths}
    bare_loop(replace(spec, epochs=1, subset=1000))  # warm-up
    updates = 0
    for r in range(args.repeats):
        order = paths[r % len(paths):] + paths[:r % len(paths)]  # rotate, so no path always runs first
        for name in order:
            wall = float("nan")
            if name == "bare loop":
                value = bare_loop(spec)
            elif name == "train_iter":
                value = shared_loop(spec)
            elif name == "tab, in-process":
                value, wall = tab_in_process(spec)
            else:
                value, wall, updates = tab_over_http(spec, client)
            ips[name].append(value)
            walls[name].append(wall)
        for name in paths:
            ratios[name].append(ips[name][-1] / ips["bare loop"][-1])
    if demo is not None:
        demo.close()

    print(f"\n| path | images/s, median of {args.repeats} rounds | ratio to the bare loop of the same round, median "
          "(min..max) | all runs (images/s) | default fine-tune wall time, median (max) |")
    print("|---|---|---|---|---|")
    for name in paths:
        rs = ratios[name]
        finite = [w for w in walls[name] if w == w]
        wall = f"{statistics.median(finite):.1f} s ({max(finite):.1f} s)" if finite else "-"
        print(f"| {name} | {statistics.median(ips[name]):,.0f} | {100 * (statistics.median(rs) - 1):+.1f}% "
              f"({100 * (min(rs) - 1):+.0f}%..{100 * (max(rs) - 1):+.0f}%) | "
              f"{', '.join(f'{v:,.0f}' for v in ips[name])} | {wall} |")
    if client is not None:
        print(f"\nupdates streamed per default fine-tune over HTTP: {updates}")
    print(f"background training present at the end: {background_training()}")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
