"""Pictures and tables for the labs: the bottleneck table and chart, the gradient lab's loss curves and
log-scale gradient bars. (The first-convolution kernel grid is :func:`cnndemo.inspection.render.kernel_grid`.)

Matplotlib's object API only (``matplotlib.figure.Figure``, no pyplot state), safe in server threads.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # imported on first use: matplotlib took 0.36 s of the app's start-up
    from matplotlib.figure import Figure


PLAIN, RESIDUAL = "#d62728", "#1f77b4"
FLOOR = 1e-30  # gradient norms below this (float32 underflow: exactly 0) are drawn at the floor


def _m(macs: int) -> str:
    return f"{macs / 1e6:,.2f} M" if macs >= 1e5 else f"{macs / 1e3:,.1f} k"


def _p(params: int) -> str:
    return f"{params / 1e3:,.1f} k" if params >= 1e4 else f"{params:,}"


CELL = "padding:4px 8px;border-bottom:1px solid #e2e8f0;white-space:nowrap"


def bottleneck_html(r: dict[str, Any]) -> str:
    """The report of :func:`cnndemo.labs.bottleneck.bottleneck` as a one-line verdict and a compact HTML table
    (cells never wrap, so a narrow column keeps "173.41 M" on one line)."""
    h, w = r["hw"]
    head = ["branch", "1x1 to", "kernel", "out", "mult-adds with", "without", "params with", "without"]
    rows = []
    for b in r["branches"]:
        kernel = f"{b['kernel']}x{b['kernel']}" + (f" ×{b['stacked']}" if b["stacked"] > 1 else "")
        rows.append([b["name"], b["reduce"] if b["reduce"] is not None else "—", kernel, b["out"],
                     _m(b["with"]["macs"]), _m(b["without"]["macs"]), _p(b["with"]["params"]), _p(b["without"]["params"])])
    tw, to = r["total_with"], r["total_without"]
    rows.append(["<b>total</b>", "", "", sum(b["out"] for b in r["branches"]), f"<b>{_m(tw['macs'])}</b>",
                 f"<b>{_m(to['macs'])}</b>", _p(tw["params"]), _p(to["params"])])
    ratio = r["ratio"]
    verdict = (f"The 1x1 reductions cut the module's multiply-adds <b>{ratio:.1f}x</b>." if ratio >= 1.05 else
               f"Here the 1x1 convs do not save anything (ratio {ratio:.2f}): the module's input has only "
               f"{r['in_channels']} channels, fewer than or about as many as the 1x1 convs produce, so they widen "
               "instead of reducing. The saving needs a wide input.")
    cells = lambda tag, row: "".join(f'<{tag} style="{CELL}">{v}</{tag}>' for v in row)  # noqa: E731
    table = (f'<table style="border-collapse:collapse;font-size:.92em"><tr>{cells("th", head)}</tr>'
             + "".join(f"<tr>{cells('td', row)}</tr>" for row in rows) + "</table>")
    return (f"<p><b>{r['module']}</b>: input {r['in_channels']} x {h} x {w}; <i>1x1 to</i> is the reduction's output "
            f"channels. {verdict}</p>" + table)


def bottleneck_figure(r: dict[str, Any]) -> Figure:
    """Multiply-adds per branch, with and without the 1x1 reduction (horizontal bars)."""
    from matplotlib.figure import Figure

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


def figure_image(fig: Figure) -> Image.Image:
    """``fig`` as a PNG-ready picture (for a ``gr.Image``: the page then needs no plot component's code)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


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
    from matplotlib.figure import Figure

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
