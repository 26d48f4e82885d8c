"""Benchmark of the fine-tune tab: training throughput with the streaming UI vs a bare PyTorch loop, and the
wall time of the default fine-tune.

    CNNDEMO_DATA=... python benchmarks/bench_finetune.py [--repeats 3] [--markdown]

Same model (the default spec's network, from the same random initialisation), same batch size, same
training subset, same optimizer and schedule, same process, runs interleaved:

* ``bare loop``  - a plain PyTorch loop: index a batch, forward, cross-entropy, backward, step;
* ``train_iter`` - the shared loop alone (what the CLI runs), events discarded;
* ``tab, in-process`` - the tab's handler (``cnndemo.app.finetune_view.finetune_events``) with Gradio's own
  postprocessing of every streamed output (figures to PNG, gallery images written), no HTTP;
* ``tab over HTTP`` - the real ``/finetune`` endpoint of a standalone tab server via ``gradio_client``.

Throughput = training images / time spent training: for the tab including the time the loop is paused while
each progress update is rendered and streamed; held-out evaluations excluded everywhere. Reported per
CPU-second of this process (robust when other processes compete for the CPU; run with ``--threads 1`` so it
approximates one idle core) and per wall-clock second.
"""

from __future__ import annotations

import argparse
import contextlib
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
from cnndemo.catalog import MEAN_STD  # noqa: E402
from cnndemo.data.datasets import to_float  # noqa: E402
from cnndemo.finetune.job import cached_splits  # noqa: E402
from cnndemo.finetune.spec import FineTuneSpec, StartPoint, build_start_model  # noqa: E402
from cnndemo.models import DEMO_CONFIGS  # noqa: E402
from cnndemo.train.loop import Step, augment_batch, run  # noqa: E402
from cnndemo.train.recipes import make_optimizer, make_schedule  # noqa: E402


class CpuMeter:
    """Process CPU time (all threads) of a run, split the way the throughput comparison needs it.

    ``inside``: in ``train_iter``'s ``next()``; ``evaluation``: in its held-out evaluations (part of ``inside``);
    ``consumer``: between a ``Step`` event and the next ``next()`` (the tab rendering and streaming that update).
    Training CPU = inside - evaluation + consumer. CPU time is what a run costs whatever else the machine does,
    so it stays meaningful while other processes starve this one (wall-clock time does not).
    """

    def __init__(self) -> None:
        self.inside = self.evaluation = self.consumer = 0.0

    @property
    def training(self) -> float:
        return self.inside - self.evaluation + self.consumer

    @contextlib.contextmanager
    def installed(self):
        """Meter every ``train_iter`` run (as called by cnndemo.finetune.job) and every evaluation while the block runs."""
        import cnndemo.finetune.job as ft
        import cnndemo.train.loop as tr

        real_iter, real_eval = ft.train_iter, tr.evaluate

        def evaluate(*args, **kwargs):
            t0 = time.process_time()
            try:
                return real_eval(*args, **kwargs)
            finally:
                self.evaluation += time.process_time() - t0

        def train_iter(*args, **kwargs):
            gen = real_iter(*args, **kwargs)
            after_step = None
            while True:
                t0 = time.process_time()
                if after_step is not None:
                    self.consumer += t0 - after_step
                try:
                    event = next(gen)
                except StopIteration as finished:
                    self.inside += time.process_time() - t0
                    return finished.value
                t1 = time.process_time()
                self.inside += t1 - t0
                after_step = t1 if isinstance(event, Step) else None
                yield event

        ft.train_iter, tr.evaluate = train_iter, evaluate
        try:
            yield self
        finally:
            ft.train_iter, tr.evaluate = real_iter, real_eval


def fresh_model(spec: FineTuneSpec, device: torch.device):
    """The spec's network from the same random initialisation every time."""
    start = StartPoint(None, DEMO_CONFIGS[spec.arch], MEAN_STD[spec.dataset], "random initialisation")
    return build_start_model(spec, start, device)


def bare_loop(spec: FineTuneSpec) -> tuple[float, float]:
    """(images/second, images/CPU-second) of a plain PyTorch training loop (no events, no evaluation, no .item())."""
    device = pick_device()
    model = fresh_model(spec, device)
    train, _ = cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)
    train = train.to(device)
    recipe = spec.recipe()
    if model.channels_last:
        model.to(memory_format=torch.channels_last)
    steps = -(-len(train) // recipe.batch_size)
    opt = make_optimizer(model.parameters(), recipe)
    sched = make_schedule(opt, recipe, steps * recipe.epochs)
    gen = torch.Generator(device=device).manual_seed(recipe.seed)
    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
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
    images = len(train) * recipe.epochs
    return images / (time.perf_counter() - t0), images / (time.process_time() - c0)


def shared_loop(spec: FineTuneSpec) -> tuple[float, float]:
    """(images/second, images/CPU-second) of ``train_iter`` alone (as the CLI drives it, events discarded)."""
    import cnndemo.finetune.job as ft

    device = pick_device()
    train, val = cached_splits(spec.dataset, spec.subset, spec.seed, spec.eval_size)
    with CpuMeter().installed() as meter:
        result = run(ft.train_iter(fresh_model(spec, device), train, val, spec.recipe(), keep="last"))
    return result.images_per_sec, len(train) * result.epochs_done / meter.training


def tab_in_process(spec: FineTuneSpec) -> tuple[float, float, float, float]:
    """(images/second, images/CPU-second, wall seconds, CPU seconds) of the tab's handler with Gradio
    postprocessing of every output."""
    import gradio as gr

    from cnndemo.app.finetune_view import OUTPUT_NAMES, finetune_events
    from cnndemo.finetune.runs import DeviceQueue, RunRegistry
    from finetune_standalone import StubModels

    components = {"curves": gr.Plot(format="png"), "confusion": gr.Plot(format="png"),
                  "features": gr.Gallery(format="png"), "metrics": gr.JSON(), "progress": gr.HTML(),
                  "status": gr.Markdown(), "accuracies": gr.Markdown(), "comparison": gr.Markdown(),
                  "checkpoint": gr.File()}
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = None
    with CpuMeter().installed() as meter:
        for out in finetune_events(spec, f"bench-{time.time()}", StubModels(), registry=RunRegistry(),
                                   queue=DeviceQueue()):
            for name, value in zip(OUTPUT_NAMES, out):
                if not (isinstance(value, dict) and value.get("__type__") == "update") and value is not None:
                    components[name].postprocess(value)
            metrics = out[-1]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert metrics["phase"] == "done", metrics
    LAST_METRICS.update(metrics)
    return metrics["images_per_sec"], spec.subset * metrics["epochs_done"] / meter.training, wall, cpu


def tab_over_http(spec: FineTuneSpec, client) -> tuple[float, float, float, float, int]:
    """(images/second, images/CPU-second, wall seconds from submit to the final update, CPU seconds, updates) over
    HTTP; server and client share this process, so the CPU figures include the client's work too."""
    t0, c0 = time.perf_counter(), time.process_time()
    meter_cm = CpuMeter().installed()
    meter = meter_cm.__enter__()
    job = client.submit(spec.arch, spec.dataset, spec.start, spec.epochs, spec.lr, spec.batch_size, spec.optimizer,
                        spec.subset, spec.augment, spec.freeze, api_name="/finetune")
    try:
        final = job.result()
    finally:
        meter_cm.__exit__(None, None, None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    metrics = final[-1]
    assert metrics["phase"] == "done", metrics
    return (metrics["images_per_sec"], spec.subset * metrics["epochs_done"] / meter.training, wall, cpu,
            len(job.outputs()))


LAST_METRICS: dict = {}  # final metrics of the latest in-process tab run


def background_training() -> bool:
    """Whether a ``cnndemo.train`` process is running on this machine."""
    return subprocess.run(["pgrep", "-f", "cnndemo.train"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each round runs every path once")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--epochs", type=int, help="override the default spec (quick checks)")
    parser.add_argument("--subset", type=int, help="override the default spec (quick checks)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = FineTuneSpec().validate()
    spec = replace(spec, epochs=args.epochs or spec.epochs, subset=args.subset or spec.subset)
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
    cpu_ips: dict[str, list[float]] = {p: [] for p in paths}
    walls: dict[str, list[float]] = {p: [] for p in paths}
    cpus: dict[str, list[float]] = {p: [] for p in paths}
    ratios: dict[str, list[float]] = {p: [] for p in paths}
    cpu_ratios: dict[str, list[float]] = {p: [] for p in paths}
    bare_loop(replace(spec, epochs=1, subset=1000))  # warm-up
    updates = 0
    for r in range(args.repeats):
        order = paths[r % len(paths):] + paths[:r % len(paths)]  # rotate, so no path always runs first
        for name in order:
            wall = cpu = float("nan")
            if name == "bare loop":
                value, per_cpu = bare_loop(spec)
            elif name == "train_iter":
                value, per_cpu = shared_loop(spec)
            elif name == "tab, in-process":
                value, per_cpu, wall, cpu = tab_in_process(spec)
            else:
                value, per_cpu, wall, cpu, updates = tab_over_http(spec, client)
            ips[name].append(value)
            cpu_ips[name].append(per_cpu)
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"round {r + 1} {name}: {value:,.0f} images/s, {per_cpu:,.0f} images/CPU-s", flush=True)
        for name in paths:
            ratios[name].append(ips[name][-1] / ips["bare loop"][-1])
            cpu_ratios[name].append(cpu_ips[name][-1] / cpu_ips["bare loop"][-1])
    if demo is not None:
        demo.close()

    def pct(values: list[float]) -> str:
        return (f"{100 * (statistics.median(values) - 1):+.1f}% "
                f"({100 * (min(values) - 1):+.0f}%..{100 * (max(values) - 1):+.0f}%)")

    def secs(values: list[float]) -> str:
        finite = [v for v in values if v == v]
        return f"{statistics.median(finite):.1f} s" if finite else "-"

    print(f"\nmedian of {args.repeats} rounds (min..max of the per-round ratio to the bare loop of the same round)\n")
    print("| path | training images per CPU-second | vs bare loop | training images/s (wall) | vs bare loop (wall) "
          "| default fine-tune: CPU time | default fine-tune: wall time |")
    print("|---|---|---|---|---|---|---|")
    for name in paths:
        print(f"| {name} | {statistics.median(cpu_ips[name]):,.0f} | {pct(cpu_ratios[name])} | "
              f"{statistics.median(ips[name]):,.0f} | {pct(ratios[name])} | {secs(cpus[name])} | {secs(walls[name])} |")
    if LAST_METRICS:
        print(f"\ndefault fine-tune: held-out accuracy {100 * LAST_METRICS['acc_before']:.1f}% -> "
              f"{100 * LAST_METRICS['acc_after']:.1f}%, test accuracy {100 * LAST_METRICS['test_accuracy']:.2f}%")
    if client is not None:
        print(f"updates streamed per default fine-tune over HTTP: {updates}")
    print(f"background training present at the end: {background_training()}")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
