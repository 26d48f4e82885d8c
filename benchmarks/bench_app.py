"""Benchmark the app: start-up, /classify over HTTP against Gradio's floor, handler time, feature-map renders.

Usage::

    python benchmarks/bench_app.py [--calls 60] [--repeats 7] [--startups 3]

Prints markdown tables (paste them into BENCHMARKS.md). What is measured:

* **start-up**: ``python app.py`` until the page answers HTTP 200 (all checkpoints loaded).
* **/classify round trip** with ``gradio_client`` (upload of a 28 x 28 PNG included), per model, interleaved
  in the same run with ``/noop``: a do-nothing endpoint with the same inputs and a Label output
  (Gradio's own floor). Median and p95.
* **handler**: preprocessing + forward + top-5, in-process, per model, for a test PNG and for a
  336 x 336 canvas drawing.
* **feature maps**: ``views.feature_view`` (forward with a hook + the channel grid) per layer, and
  the Inception-branch and residual views.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve(port: int) -> None:
    """The real app plus a /noop endpoint (same inputs, Label output, no work): Gradio's floor."""
    import gradio as gr

    from cnndemo.app.api import ImageFile
    from cnndemo.app.layout import build_demo, launch_kwargs

    demo = build_demo()
    with demo:
        with gr.Column(visible=False):
            image = ImageFile(type="filepath", label="image")
            arch = gr.Dropdown(["vgg11", "googlenet", "resnet18", "inception_net", "residual_net"], value="vgg11", label="arch")
            dataset = gr.Dropdown(["mnist", "fashion_mnist"], value="mnist", label="dataset")
            label = gr.Label(label="prediction")
            button = gr.Button(visible=False)
        button.click(lambda image, arch, dataset: {"0": 1.0}, [image, arch, dataset], label, api_name="noop")
    demo.launch(**{**launch_kwargs(demo), "server_port": port, "quiet": True})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_served(url: str, proc: subprocess.Popen, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()[-2000:] if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not served within {timeout} s")


def startup(n: int) -> list[float]:
    """Seconds from ``python app.py`` to a served page, ``n`` times."""
    times = []
    for _ in range(n):
        port = free_port()
        env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            times.append(wait_served(f"http://127.0.0.1:{port}/", proc))
        finally:
            proc.terminate()
            proc.wait(20)
    return times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ms(v: float) -> str:
    return f"{v * 1000:.1f}"


def http_round_trips(calls: int) -> None:
    from gradio_client import Client, handle_file

    from cnndemo.train.checkpoints import list_pretrained

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_served(f"http://127.0.0.1:{port}/", proc)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        pairs = [p for p in list_pretrained()]
        image = {d: str(sorted((ROOT / "examples" / d).glob("7_*.png"))[0]) for d in ("mnist", "fashion_mnist")}
        for arch, dataset in pairs[:2]:  # warm up both endpoints
            for _ in range(5):
                client.predict(handle_file(image[dataset]), arch, dataset, api_name="/classify")
                client.predict(handle_file(image[dataset]), arch, dataset, api_name="/noop")
        print("\n### /classify round trip over HTTP (gradio_client, upload included)\n")
        print(f"{calls} calls each, interleaved with /noop (same inputs, Label output, does nothing).\n")
        print("| model | /classify p50 ms | p95 ms | /noop p50 ms | p95 ms | p50 above floor ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for arch, dataset in pairs:
            work, floor = [], []
            for _ in range(calls):
                for name, out in (("/classify", work), ("/noop", floor)):
                    t0 = time.perf_counter()
                    client.predict(handle_file(image[dataset]), arch, dataset, api_name=name)
                    out.append(time.perf_counter() - t0)
            print(f"| {arch}/{dataset} | {ms(pct(work, 50))} | {ms(pct(work, 95))} | {ms(pct(floor, 50))} | "
                  f"{ms(pct(floor, 95))} | {ms(pct(work, 50) - pct(floor, 50))} |", flush=True)
    finally:
        proc.terminate()
        proc.wait(20)


CLOCK = time.perf_counter  # --cpu-time switches to time.thread_time (see main)


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs (after one warm-up run), by ``CLOCK``."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return statistics.median(times)


def in_process(repeats: int) -> None:
    from PIL import Image, ImageDraw

    from cnndemo.app import views
    from cnndemo.app.zoo import ModelZoo

    zoo = ModelZoo.load()
    im = Image.new("L", (336, 336), 0)
    ImageDraw.Draw(im).line([(90, 70), (250, 70), (150, 280)], fill=255, width=28)
    rgba = np.zeros((336, 336, 4), np.uint8)
    rgba[..., 3] = np.asarray(im)
    drawing = {"background": None, "layers": [rgba], "composite": rgba}
    image = {d: str(sorted((ROOT / "examples" / d).glob("7_*.png"))[0]) for d in ("mnist", "fashion_mnist")}

    print("\n### Handler time (preprocessing + forward + top-5), in-process, median\n")
    print("| model | test PNG ms | 336x336 canvas drawing ms |")
    print("|---|---:|---:|")
    for arch, dataset in zoo.available:
        a = timed(lambda: views.predict(zoo, image[dataset], arch, dataset), repeats * 4)
        b = timed(lambda: views.predict(zoo, drawing, arch, dataset), repeats * 4)
        print(f"| {arch}/{dataset} | {ms(a)} | {ms(b)} |", flush=True)

    print("\n### Feature-map grid (forward with hook + channel grid render), median per layer\n")
    print("| model | layer | shape | ms |")
    print("|---|---|---|---:|")
    worst = 0.0
    seen_arch = set()
    for arch, dataset in zoo.available:
        if arch in seen_arch:
            continue
        seen_arch.add(arch)
        for label, name in views.layer_choices(zoo, arch, dataset):
            t = timed(lambda: views.feature_view(zoo, drawing, arch, dataset, name), repeats)
            worst = max(worst, t)
            print(f"| {arch} | {name.removeprefix('net.')} | {label.split(' · ')[-1]} | {ms(t)} |", flush=True)
        if views.module_choices(zoo, arch, dataset):
            for label, name in views.module_choices(zoo, arch, dataset):
                t = timed(lambda: views.branches_view(zoo, drawing, arch, dataset, name), repeats)
                worst = max(worst, t)
                print(f"| {arch} | Inception branches {label} (4 grids) | | {ms(t)} |", flush=True)
        try:
            t = timed(lambda: views.residual_view(zoo, drawing, arch, dataset), repeats)
            worst = max(worst, t)
            print(f"| {arch} | residual blocks figure | | {ms(t)} |", flush=True)
        except LookupError:
            pass
    print(f"\nSlowest view: {ms(worst)} ms")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--startups", type=int, default=3)
    parser.add_argument("--only", choices=["all", "inproc"], default="all",
                        help="inproc: only the in-process handler and feature-map timings")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time in-process work by CPU time of this thread (time.thread_time), not wall "
                             "clock: meaningful when other processes starve this one of CPU")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.thread_time
        torch_threads = 1
    else:
        torch_threads = None
    import torch

    from cnndemo.device import device_name, pick_device

    training = subprocess.run(["pgrep", "-f", "cnndemo.train"], capture_output=True, text=True).stdout.strip()
    print(f"## cnndemo app benchmark\n\nMachine: {device_name(pick_device())}, torch {torch.__version__}, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    if training:
        print("\n**Measured while training ran in the background** (both cores busy; figures are pessimistic).")
    if torch_threads:
        torch.set_num_threads(torch_threads)
    if args.cpu_time:
        print("\nIn-process figures are **CPU time of the calling thread** (torch limited to 1 thread), "
              "not wall-clock time.")
    if args.only == "inproc":
        in_process(args.repeats)
        return
    times = startup(args.startups)
    print(f"\n### Start-up\n\n`python app.py` to a served page: {', '.join(f'{t:.1f}' for t in times)} s "
          f"(median {statistics.median(times):.1f} s).")
    http_round_trips(args.calls)
    in_process(args.repeats)


if __name__ == "__main__":
    main()
