"""Benchmark the live drawing canvas (cnndemo/app/canvas.py) in headless Chromium.

Usage::

    python benchmarks/bench_canvas.py [--rounds 5] [--seconds 2.0]

Two pages are served in-process side by side: (a) the canvas wired to a real handler (decode, MNIST
framing, one residual_net forward pass, top-3 Label) and (b) a bare page with the same canvas and a
handler that does nothing. Rounds alternate between them; medians are printed as a markdown table:

* **updates/s while drawing**: answers (acks) that arrive while the pen is down / seconds drawing
  (the mouse moves every ~16 ms along a 7 for ``--seconds``);
* **settled after pen-up**: from the page's pointerup to the answer of the last payload (ms);
* **page load**: ``goto`` until the canvas has sized its backing store (ms).

Targets (issue #8): >= 5 updates/s, settled <= 300 ms, page load of (a) <= 1.5 x (b).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from cnndemo.app.canvas import DrawingCanvas, on_draw  # noqa: E402
from cnndemo.data.canvas import ink_image  # noqa: E402
from cnndemo.train.checkpoints import load_pretrained  # noqa: E402
from cnndemo.data.decode import InputError
from cnndemo.data.framing import prepare  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SEVEN = [(0.25, 0.20), (0.72, 0.20), (0.62, 0.42), (0.50, 0.85)]
# In-page probes: the time of every answer (data-acked changes) and of the last pointerup.
PROBE = """() => {
  const root = document.querySelector('#canvas .cd-wrap');
  window.__acks = []; window.__up = null; window.__down = null;
  new MutationObserver(() => window.__acks.push([performance.now(), +root.dataset.acked, +root.dataset.seq]))
    .observe(root, {attributes: true, attributeFilter: ['data-acked']});
  addEventListener('pointerdown', () => { window.__down = performance.now(); }, true);
  addEventListener('pointerup', () => { window.__up = performance.now(); }, true);
}"""


def real_handler():
    model, meta = load_pretrained("residual_net", "mnist", device="cpu")

    def classify(alpha):
        if alpha is None:
            return None
        try:
            x = prepare(ink_image(alpha), "mnist").tensor
        except InputError:
            return None
        with torch.no_grad():
            p = model(x).softmax(1)[0]
        return {str(meta["classes"][i]): float(p[i]) for i in range(len(p))}

    return classify


def build(handler) -> gr.Blocks:
    with gr.Blocks() as demo:
        canvas = DrawingCanvas()
        label = gr.Label(num_top_classes=3, elem_id="label-vgg")
        on_draw(canvas, handler, [label])
    return demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo: gr.Blocks) -> str:
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return f"http://127.0.0.1:{port}/"


def one_round(browser, url: str, seconds: float) -> dict:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.querySelector('#canvas canvas') && document.querySelector('#canvas canvas').width > 0")
    load_ms = (time.perf_counter() - t0) * 1000
    page.evaluate(PROBE)
    box = page.locator("#canvas canvas").bounding_box()
    x0, y0, side = box["x"], box["y"], box["width"]
    steps = max(4, round(seconds / 0.016))
    per_leg = steps // (len(SEVEN) - 1)
    page.mouse.move(x0 + SEVEN[0][0] * side, y0 + SEVEN[0][1] * side)
    page.mouse.down()
    start = time.perf_counter()
    (u, v) = SEVEN[0]
    for u1, v1 in SEVEN[1:]:
        for k in range(1, per_leg + 1):
            page.mouse.move(x0 + (u + (u1 - u) * k / per_leg) * side, y0 + (v + (v1 - v) * k / per_leg) * side)
            target = start + seconds * ((SEVEN.index((u1, v1)) - 1) * per_leg + k) / steps
            time.sleep(max(0.0, target - time.perf_counter()))
        u, v = u1, v1
    page.mouse.up()
    page.wait_for_function("""() => { const d = document.querySelector('#canvas .cd-wrap').dataset;
        return window.__up !== null && +d.seq > 0 && +d.acked === +d.seq; }""", timeout=60_000)
    acks, down, up = page.evaluate("[window.__acks, window.__down, window.__up]")
    page.close()
    during = [a for a in acks if down <= a[0] <= up]
    final = [a for a in acks if a[0] > up]
    return {"load_ms": load_ms, "updates_per_s": len(during) / ((up - down) / 1000),
            "settled_ms": (final[-1][0] - up) if final else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="drawing time per round")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    apps = {"(a) canvas + residual_net": launch(build(real_handler())),
            "(b) bare: canvas + no-op handler": launch(build(lambda alpha: None))}
    results: dict[str, list[dict]] = {k: [] for k in apps}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, url in apps.items():  # warm-up round each (first forward pass, page caches)
            one_round(browser, url, args.seconds)
        for _ in range(args.rounds):
            for name, url in apps.items():
                results[name].append(one_round(browser, url, args.seconds))
        browser.close()
    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("load_ms", "updates_per_s", "settled_ms")}
           for n, rs in results.items()}
    print(f"\nLive canvas, {args.rounds} rounds (medians), {args.seconds:.1f} s of drawing per round, "
          f"torch threads {torch.get_num_threads()}\n")
    print("| page | updates/s while drawing | settled after pen-up (ms) | page load (ms) |")
    print("|---|---:|---:|---:|")
    for n, m in med.items():
        print(f"| {n} | {m['updates_per_s']:.1f} | {m['settled_ms']:.0f} | {m['load_ms']:.0f} |")
    a, b = med[list(apps)[0]], med[list(apps)[1]]
    ratio = a["load_ms"] / b["load_ms"]
    print(f"\nTargets: >= 5 updates/s: {'met' if a['updates_per_s'] >= 5 else 'MISSED'}; "
          f"settled <= 300 ms: {'met' if a['settled_ms'] <= 300 else 'MISSED'}; "
          f"page load (a)/(b) = {ratio:.2f} <= 1.5: {'met' if ratio <= 1.5 else 'MISSED'}")
    for n, rs in results.items():
        print(f"{n}: updates/s {[round(r['updates_per_s'], 1) for r in rs]}, "
              f"settled ms {[round(r['settled_ms']) for r in rs]}, load ms {[round(r['load_ms']) for r in rs]}")


if __name__ == "__main__":
    main()
