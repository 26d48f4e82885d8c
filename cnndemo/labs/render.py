"""Pictures and tables for the labs: the bottleneck table and chart, the gradient lab's curves and log-scale
gradient bars, the signed grid of first-convolution kernels.

Matplotlib's object API only (``matplotlib.figure.Figure``, no pyplot state), safe in server threads.
The kernel grid is plain NumPy/PIL through :mod:`cnndemo.viz`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from cnndemo.viz import BACKGROUND, DIVERGING, MUTED, TEXT, colorize, font, normalise, upscale

PLAIN, RESIDUAL = "#d62728", "#1f77b4"
FLOOR = 1e-30  # gradient norms below this (float32 underflow: exactly 0) are drawn at the floor


def _m(macs: int) -> str:
    return f"{macs / 1e6:,.2f} M" if macs >= 1e5 else f"{macs / 1e3:,.1f} k"


def bottleneck_markdown(r: dict[str, Any]) -> str:
    """The report of :func:`cnndemo.labs.bottleneck.bottleneck` as a Markdown table with a one-line verdict."""
    h, w = r["hw"]
    rows = ["| branch | reduce (1x1) | big kernel | out | mult-adds with | without | params with | without |",
            "|---|---|---|---|---|---|---|---|"]
    for b in r["branches"]:
        kernel = f"{b['kernel']}x{b['kernel']}" + (f" x{b['stacked']} stacked" if b["stacked"] > 1 else "")
        reduce = f"{r['in_channels']} → {b['reduce']}" if b["reduce"] is not None else "—"
        rows.append(f"| {b['name']} | {reduce} | {kernel} | {b['out']} | {_m(b['with']['macs'])} | "
                    f"{_m(b['without']['macs'])} | {b['with']['params']:,} | {b['without']['params']:,} |")
    tw, to = r["total_with"], r["total_without"]
    rows.append(f"| **total** | | | {r.get('out_channels', '')} | **{_m(tw['macs'])}** | **{_m(to['macs'])}** | "
                f"{tw['params']:,} | {to['params']:,} |")
    ratio = r["ratio"]
    verdict = (f"The 1x1 reductions cut the module's multiply-adds **{ratio:.1f}x**." if ratio >= 1.05 else
               f"Here the 1x1 convs do not save anything (ratio {ratio:.2f}): the module's input has only "
               f"{r['in_channels']} channels, fewer than or about as many as the 1x1 convs produce, so they widen "
               "instead of reducing. The saving needs a wide input.")
    head = f"**{r['module']}**: input {r['in_channels']} x {h} x {w}. {verdict}"
    return head + "\n\n" + "\n".join(rows)


def bottleneck_figure(r: dict[str, Any]) -> Figure:
    """Multiply-adds per branch, with and without the 1x1 reduction (horizontal bars)."""
    fig = Figure(figsize=(6.5, 2.6), dpi=90, layout="constrained")
    ax = fig.subplots()
    names = [b["name"] for b in r["branches"]]
    y = np.arange(len(names))
    ax.barh(y + 0.2, [b["without"]["macs"] / 1e6 for b in r["branches"]], 0.4, color="#f59e0b",
            label="without the 1x1 reduction")
    ax.barh(y - 0.2, [b["with"]["macs"] / 1e6 for b in r["branches"]], 0.4, color="#4f46e5", label="with it")
    ax.set(yticks=y, yticklabels=names, xlabel="million multiply-adds", title=f"{r['module']}: cost per branch")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _smooth(values: list[float], k: int = 10) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return a
    c = np.cumsum(np.insert(a, 0, 0.0))
    idx = np.arange(1, len(a) + 1)
    lo = np.maximum(idx - k, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def gradient_figure(state: dict[str, Any], steps: int | None = None) -> Figure:
    """Two panels for a gradient-lab event: both loss curves, and each conv layer's gradient norm (log scale)."""
    fig = Figure(figsize=(10.0, 3.4), dpi=90, layout="constrained")
    ax_loss, ax_grad = fig.subplots(1, 2, width_ratios=[1, 1.5])
    for name, color in (("plain", PLAIN), ("residual", RESIDUAL)):
        loss = state.get(name, {}).get("loss", [])
        x = np.arange(1, len(loss) + 1)
        ax_loss.plot(x, loss, color=color, alpha=0.25, lw=0.8)
        ax_loss.plot(x, _smooth(loss), color=color, lw=1.8, label=f"{name}")
    ax_loss.axhline(math.log(10), color="#64748b", ls=":", lw=1)
    ax_loss.text(1, math.log(10), " chance (ln 10)", color="#64748b", fontsize=7, va="bottom")
    ax_loss.set(xlabel="training step", ylabel="loss (cross-entropy)", title="training loss",
                xlim=(0, max(steps or 0, len(state.get("plain", {}).get("loss", [])), 1)))
    ax_loss.set_ylim(bottom=0)
    ax_loss.legend(fontsize=8)
    plain = np.asarray(state.get("plain", {}).get("grad_norms", []), dtype=float)
    residual = np.asarray(state.get("residual", {}).get("grad_norms", []), dtype=float)
    n = max(len(plain), len(residual))
    x = np.arange(1, n + 1)
    if n:
        ax_grad.bar(x - 0.2, np.maximum(plain, FLOOR) if len(plain) else np.zeros(n), 0.4, color=PLAIN, label="plain")
        ax_grad.bar(x + 0.2, np.maximum(residual, FLOOR) if len(residual) else np.zeros(n), 0.4, color=RESIDUAL,
                    label="residual")
        ax_grad.set_yscale("log")
        positive = np.concatenate([plain[plain > 0], residual[residual > 0]])
        if positive.size:
            ax_grad.set_ylim(max(FLOOR, positive.min() / 3), positive.max() * 3)
        if (plain == 0).any() or (residual == 0).any():
            ax_grad.text(0.01, 0.02, "bars at the bottom: exactly 0 (float32 underflow)", transform=ax_grad.transAxes,
                         fontsize=7, color="#64748b")
    ax_grad.set(xlabel="conv layer (1 = next to the input)", ylabel="‖∂loss/∂W‖ (log scale)",
                title="gradient norm per layer (last 10 steps)", )
    ax_grad.title.set_horizontalalignment("left")
    ax_grad.title.set_position((0.0, 1.0))
    if n:
        ax_grad.set_xticks(x if n <= 20 else x[:: max(1, n // 14)])
    if n:
        ax_grad.legend(fontsize=8, ncol=2, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def filter_grid(kernels: torch.Tensor | np.ndarray, cell: int = 56, cols: int = 8, title: str | None = None) -> Image.Image:
    """First-convolution kernels (out x in x k x k) as a grid, red > 0 and blue < 0 on one symmetric scale.

    All kernels share the scale (the largest |weight|), so weak and strong filters can be compared; a
    kernel with several input channels shows one tile per input channel, labelled ``#out.in``.
    """
    a = kernels.detach().float().cpu().numpy() if isinstance(kernels, torch.Tensor) else np.asarray(kernels, np.float32)
    if a.ndim != 4:
        raise ValueError(f"expected out x in x k x k kernels, got shape {a.shape}")
    out_c, in_c, kh, kw = a.shape
    tiles = [(f"#{o}" if in_c == 1 else f"#{o}.{i}", a[o, i]) for o in range(out_c) for i in range(in_c)]
    scale = float(np.abs(a).max()) or 1.0
    factor = max(1, cell // max(kh, kw))
    th, tw = kh * factor, kw * factor
    label_h, gap, top = 14, 6, (24 if title else 6)
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    legend_h = 22
    canvas = np.empty((top + rows * (th + label_h + gap) + legend_h + gap, cols * tw + (cols + 1) * gap, 3), np.uint8)
    canvas[:] = BACKGROUND
    labels = []
    for k, (label, tile) in enumerate(tiles):
        r, q = divmod(k, cols)
        y, x = top + r * (th + label_h + gap), gap + q * (tw + gap)
        canvas[y : y + th, x : x + tw] = upscale(colorize(normalise(tile, scale, signed=True), DIVERGING), factor)
        labels.append((x, y + th + 1, label))
    bar_y = canvas.shape[0] - legend_h
    bar_w = min(160, canvas.shape[1] - 2 * gap)
    ramp = colorize(np.tile(np.linspace(0, 1, bar_w), (8, 1)), DIVERGING)
    canvas[bar_y : bar_y + 8, gap : gap + bar_w] = ramp
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    small = font(10)
    for x, y, text in labels:
        draw.text((x, y), text, fill=MUTED, font=small)
    draw.text((gap, bar_y + 9), f"-{scale:.2g}", fill=MUTED, font=small)
    draw.text((gap + bar_w // 2 - 3, bar_y + 9), "0", fill=MUTED, font=small)
    draw.text((gap + bar_w - 30, bar_y + 9), f"+{scale:.2g}", fill=MUTED, font=small)
    if title:
        draw.text((gap, 5), title, fill=TEXT, font=font(13))
    return im
