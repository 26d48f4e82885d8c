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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
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
    rows: dict[str, list[float]] = {"bare loop": [], "train_iter": [], "tab, in-process": [], "tab over HTTP": []}
    walls: dict[str, list[float]] = {"tab, in-process": [], "tab over HTTP": []}
    bare_loop(replace(spec, epochs=1, subset=1000))  # warm-up
    for _ in range(args.repeats):
        rows["bare loop"].append(bare_loop(spec))
        rows["train_iter"].append(shared_loop(spec))
        ips, wall = tab_in_process(spec)
        rows["tab, in-process"].append(ips)
        walls["tab, in-process"].append(wall)
        if client is not None:
            ips, wall, updates = tab_over_http(spec, client)
            rows["tab over HTTP"].append(ips)
            walls["tab over HTTP"].append(wall)
    if demo is not None:
        demo.close()

    base = statistics.median(rows["bare loop"])
    print(f"\n| path | images/s (median of {args.repeats}) | vs bare loop | default fine-tune wall time |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        if not values:
            continue
        med = statistics.median(values)
        wall = f"{statistics.median(walls[name]):.1f} s" if name in walls and walls[name] else "-"
        print(f"| {name} | {med:,.0f} ({', '.join(f'{v:,.0f}' for v in values)}) | {100 * (med / base - 1):+.1f}% | {wall} |")
    if client is not None:
        print(f"\nupdates streamed per default fine-tune over HTTP: {updates}")
    print(f"background training present at the end: {background_training()}")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
