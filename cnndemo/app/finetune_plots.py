"""Pictures for the fine-tune tab: learning curves, confusion matrices, feature-map grids, a progress bar.

Matplotlib's object API only (``matplotlib.figure.Figure``, no pyplot state), so it is safe in
server threads and sets no global backend. The feature grids are plain NumPy (no figure). Matplotlib is
imported on the first figure, not at start-up (it costs about a second of ``python app.py``'s start).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Curves:
    """The points of the learning curves, appended to as events arrive.

    ``x`` values are in epochs (2.5 = halfway through epoch 3); held-out points sit at whole epochs,
    epoch 0 being the accuracy before training.
    """

    step_x: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    epoch_x: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epochs: int = 1

    def add_step(self, epoch: int, step: int, steps_per_epoch: int, loss: float, acc: float) -> None:
        """A training-loss point (mean over the steps since the previous point)."""
        self.step_x.append(epoch - 1 + step / steps_per_epoch)
        self.train_loss.append(loss)
        self.train_acc.append(acc)

    def add_epoch(self, epoch: int, val_acc: float, val_loss: float | None = None) -> None:
        """A held-out point (epoch 0 = before training)."""
        self.epoch_x.append(float(epoch))
        self.val_acc.append(val_acc)
        self.val_loss.append(float("nan") if val_loss is None else val_loss)

    @property
    def points(self) -> int:
        """Number of points drawn (grows as training runs)."""
        return len(self.step_x) + len(self.epoch_x)


def curves_figure(c: Curves) -> Figure:
    """Two panels: training loss, and training / held-out accuracy, against epochs."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.0), dpi=90, layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    xmax = max(c.epochs, 1)
    ax_loss.plot(c.step_x, c.train_loss, color="#1f77b4", lw=1.5, label="train loss")
    if any(v == v for v in c.val_loss[1:]):  # any non-NaN held-out loss after epoch 0
        ax_loss.plot(c.epoch_x[1:], c.val_loss[1:], "o-", color="#d62728", lw=1.5, label="held-out loss")
    ax_loss.set(xlim=(0, xmax), xlabel="epoch", title="loss")
    ax_loss.set_ylim(bottom=0)
    ax_acc.plot(c.step_x, [100 * a for a in c.train_acc], color="#1f77b4", lw=1.2, alpha=0.7, label="train (batches)")
    ax_acc.plot(c.epoch_x, [100 * a for a in c.val_acc], "o-", color="#d62728", lw=2, label="held-out")
    for x, a in zip(c.epoch_x, c.val_acc):
        ax_acc.annotate(f"{100 * a:.1f}%", (x, 100 * a), textcoords="offset points", xytext=(0, -13),
                        ha="center", fontsize=8, color="#d62728")
    ax_acc.set(xlim=(-0.1, xmax + 0.1), ylim=(0, 100), xlabel="epoch", title="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(loc="best", fontsize=8)
    return fig


def confusion_figure(before: np.ndarray, after: np.ndarray, classes: list[str],
                     acc_before: float, acc_after: float) -> Figure:
    """Before / after confusion matrices (rows: true class, columns: predicted), counts in the cells."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.4), dpi=90, layout="constrained")
    short = [name[:7] for name in classes]
    for ax, m, title in zip(fig.subplots(1, 2), (before, after),
                            (f"before: {100 * acc_before:.1f}%", f"after: {100 * acc_after:.1f}%")):
        ax.imshow(m, cmap="Blues")
        ax.set(title=title, xlabel="predicted", ylabel="true", xticks=range(10), yticks=range(10))
        ax.set_xticklabels(short, rotation=60, fontsize=7)
        ax.set_yticklabels(short, fontsize=7)
        top = m.max() or 1
        for i in range(10):
            for j in range(10):
                if m[i, j]:
                    ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if m[i, j] > top / 2 else "black")
    return fig


def progress_html(fraction: float, text: str) -> str:
    """A progress bar with a caption (``fraction`` in 0..1)."""
    pct = max(0.0, min(1.0, fraction)) * 100
    return (
        '<div class="ft-progress" style="font-family:sans-serif">'
        '<div style="background:#e5e7eb;border-radius:6px;height:18px;overflow:hidden">'
        f'<div class="ft-progress-fill" style="width:{pct:.1f}%;background:#f97316;height:100%;'
        'transition:width .3s"></div></div>'
        f'<div class="ft-progress-text" style="margin-top:4px;font-size:14px">{html.escape(text)}</div></div>'
    )


def format_seconds(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
