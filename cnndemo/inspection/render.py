"""Pictures of activations: crisp channel grids, residual rows and kernels as PIL images (PNG-ready).

Activations are mapped through a matplotlib colormap (a lookup table; no pyplot) and upscaled with
nearest-neighbour so every activation stays a sharp square. The pictures the live canvas redraws on every update
(channel grids, residual rows, the framed input) are palette or greyscale images: see
:mod:`cnndemo.inspection.palette` for why.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from cnndemo.inspection.palette import (
    BACKGROUND,
    MUTED,
    PNG_LEVEL,
    TEXT,
    Sheet,
    font,
    lut,
    text_shades,
)

SEQUENTIAL = "magma"  # for non-negative activations (after ReLU)
DIVERGING = "RdBu_r"  # for signed values (F(x), convs without ReLU): red > 0, blue < 0


def colorize(a: np.ndarray, cmap: str = SEQUENTIAL) -> np.ndarray:
    """Values in [0, 1] (H x W) -> H x W x 3 uint8 through ``cmap``."""
    idx = np.clip(np.nan_to_num(a) * 255, 0, 255).round().astype(np.uint8)
    return lut(cmap)[idx]


def upscale(a: np.ndarray, factor: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Nearest-neighbour upscaling of the two ``axes`` (rows, columns) by an integer ``factor`` (crisp pixels,
    no blur): H x W (x 3) by default, ``axes=(1, 2)`` for a stack of N x H x W tiles."""
    return a.repeat(factor, axis=axes[0]).repeat(factor, axis=axes[1]) if factor > 1 else a


def _as_numpy(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    return maps.detach().float().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps, np.float32)


def normalise(a: np.ndarray, scale: float | np.ndarray, signed: bool) -> np.ndarray:
    """Map to [0, 1]: ``a / scale`` for non-negative maps, ``0.5 + a / (2 scale)`` for signed ones. ``scale`` may
    be an array that broadcasts against ``a`` (one per channel); where it is not positive the result is 0 (0.5
    for signed maps)."""
    scale = np.asarray(scale, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = 0.5 + a / (2 * scale) if signed else a / scale
    return np.where(scale > 0, values, np.float32(0.5 if signed else 0.0))


def strongest_first(maps: np.ndarray) -> list[int]:
    """Channel indices by max |activation|, strongest first (ties keep channel order)."""
    peak = np.abs(maps.reshape(maps.shape[0], -1)).max(1)
    return sorted(range(len(peak)), key=lambda i: (-peak[i], i))


def channel_grid(
    maps: torch.Tensor | np.ndarray,
    max_channels: int = 64,
    cols: int = 8,
    cell: int = 72,
    title: str | None = None,
    strongest: bool = True,
) -> Image.Image:
    """A grid of a layer's channels (C x H x W), strongest first, each labelled ``#index`` and its max.

    ``strongest=False`` keeps channel order (the fine-tune tab shows the same channels epoch after epoch).

    Each channel is scaled by its own peak, but never by less than a quarter of the layer's
    peak, so near-dead channels look dark instead of showing amplified noise. Signed maps use
    a diverging colormap centred on zero. Drawn as a palette image (:mod:`cnndemo.inspection.palette`), all
    channels coloured and enlarged in one array operation.
    """
    a = _as_numpy(maps)
    if a.ndim == 2:
        a = a[None]
    order = (strongest_first(a) if strongest else list(range(len(a))))[:max_channels]
    signed = bool(a.min() < 0) if a.size else False
    cmap = DIVERGING if signed else SEQUENTIAL
    layer_peak = float(np.abs(a).max()) if a.size else 0.0
    factor = max(1, cell // max(a.shape[1], a.shape[2]))
    ch, cw = a.shape[1] * factor, a.shape[2] * factor
    label_h, gap, top = 15, 6, (22 if title else 4)
    cols = max(1, min(cols, len(order)))
    rows = max(1, -(-len(order) // cols))
    sheet = Sheet(top + rows * (ch + label_h + gap) + gap, cols * cw + (cols + 1) * gap, (cmap,))
    chosen = a[order]
    peaks = np.abs(chosen).reshape(len(order), -1).max(1) if order else np.zeros(0, np.float32)
    scales = np.maximum(peaks, 0.25 * layer_peak)[:, None, None]
    tiles = upscale(sheet.indices(normalise(chosen, scales, signed), cmap), factor, axes=(1, 2))
    maxima = chosen.reshape(len(order), -1).max(1) if order else []
    for k, c in enumerate(order):
        r, q = divmod(k, cols)
        y, x = top + r * (ch + label_h + gap), gap + q * (cw + gap)
        sheet.paste(y, x, tiles[k])
        sheet.text((x, y + ch + 1), f"#{c}  {float(maxima[k]):.2f}", MUTED, 10)
    if title:
        sheet.text((gap, 4), title, TEXT, 13)
    return sheet.image()


def input_image(a: np.ndarray | torch.Tensor, factor: int = 8) -> Image.Image:
    """The 28 x 28 model input as a crisp greyscale image (white on black, like the dataset)."""
    a = _as_numpy(a).squeeze()
    g = np.clip(a * 255 if a.max() <= 1.0 else a, 0, 255).round().astype(np.uint8)
    im = Image.fromarray(upscale(g, factor))
    im.encoderinfo = {"compress_level": PNG_LEVEL}
    return im


def residual_figure(blocks: list, cell: int = 84) -> Image.Image:
    """Rows of x | F(x) | out for residual blocks (``inspection.ResidualView``), averaged over channels.

    x and out are means over channels (magma); F(x) is its signed channel mean (red > 0 > blue),
    each row labelled with the block name, shapes and ‖F(x)‖/‖x‖.
    """
    gap, label_w, head = 8, 190, 24
    rows = []
    for b in blocks:
        x, fx, out = (_as_numpy(t).mean(0) for t in (b.x, b.fx, b.out))
        scale = max(float(np.abs(x).max()), float(np.abs(out).max()), 1e-6)
        fx_scale = float(np.abs(fx).max())
        rows.append((b, [(normalise(x, scale, False), SEQUENTIAL), (normalise(fx, fx_scale, True), DIVERGING),
                         (normalise(out, scale, False), SEQUENTIAL)]))
    heads = ("x (block input)", "F(x) (residual)", "out = relu(F(x) + x)")
    tile_h = max((v.shape[0] * max(1, cell // max(v.shape)) for _, ts in rows for v, _ in ts), default=cell)
    col_w = max(max((v.shape[1] * max(1, cell // max(v.shape)) for _, ts in rows for v, _ in ts), default=cell),
                *(text_shades(h, 12).shape[1] + 4 for h in heads))
    sheet = Sheet(head + len(rows) * (tile_h + gap) + gap, label_w + 3 * (col_w + gap) + gap, (SEQUENTIAL, DIVERGING))
    for r, (_, tiles) in enumerate(rows):
        y = head + r * (tile_h + gap)
        for k, (values, cmap) in enumerate(tiles):
            tile = upscale(sheet.indices(values, cmap), max(1, cell // max(values.shape)))
            sheet.paste(y, label_w + gap + k * (col_w + gap), tile)
    for k, name in enumerate(heads):
        sheet.text((label_w + gap + k * (col_w + gap), 5), name, TEXT, 12)
    for r, (b, _) in enumerate(rows):
        y = head + r * (tile_h + gap)
        shape = "x".join(str(s) for s in b.x.shape)
        out_shape = "x".join(str(s) for s in b.out.shape)
        sheet.text((gap, y + 4), b.name.removeprefix("net."), TEXT, 13)
        sheet.text((gap, y + 24), f"in {shape}", MUTED, 11)
        sheet.text((gap, y + 40), f"out {out_shape}", MUTED, 11)
        sheet.text((gap, y + 58), f"|F(x)|/|x| = {b.ratio:.2f}", TEXT, 12)
    return sheet.image()


def kernel_grid(kernels: np.ndarray | torch.Tensor, cell: int = 56, cols: int = 8, title: str | None = None) -> Image.Image:
    """First-convolution kernels (out x in x k x k) as a grid, red > 0 and blue < 0 on one symmetric scale.

    All kernels share the scale (the largest |weight|), so weak and strong filters can be compared; a kernel
    with several input channels shows one tile per input channel (``#out.in``). A colour bar gives the scale.
    """
    a = _as_numpy(kernels)
    if a.ndim != 4:
        raise ValueError(f"expected out x in x k x k kernels, got shape {a.shape}")
    out_c, in_c, kh, kw = a.shape
    tiles = [(f"#{o}" if in_c == 1 else f"#{o}.{i}", a[o, i]) for o in range(out_c) for i in range(in_c)]
    scale = float(np.abs(a).max()) or 1.0
    factor = max(1, cell // max(kh, kw))
    th, tw = kh * factor, kw * factor
    label_h, gap, top, legend_h = 14, 6, (24 if title else 6), 22
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    width = max(cols * tw + (cols + 1) * gap, 180)
    canvas = np.empty((top + rows * (th + label_h + gap) + legend_h + gap, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    for k, (_, tile) in enumerate(tiles):
        r, q = divmod(k, cols)
        y, x = top + r * (th + label_h + gap), gap + q * (tw + gap)
        canvas[y : y + th, x : x + tw] = upscale(colorize(normalise(tile, scale, signed=True), DIVERGING), factor)
    bar_y, bar_w = canvas.shape[0] - legend_h, min(160, width - 2 * gap)
    canvas[bar_y : bar_y + 8, gap : gap + bar_w] = colorize(np.tile(np.linspace(0, 1, bar_w), (8, 1)), DIVERGING)
    im = Image.fromarray(canvas)
    draw, small = ImageDraw.Draw(im), font(10)
    for k, (label, _) in enumerate(tiles):
        r, q = divmod(k, cols)
        draw.text((gap + q * (tw + gap), top + r * (th + label_h + gap) + th + 1), label, fill=MUTED, font=small)
    draw.text((gap, bar_y + 9), f"-{scale:.2g}", fill=MUTED, font=small)
    draw.text((gap + bar_w // 2 - 3, bar_y + 9), "0", fill=MUTED, font=small)
    draw.text((gap + bar_w - 30, bar_y + 9), f"+{scale:.2g}", fill=MUTED, font=small)
    if title:
        draw.text((gap, 5), title, fill=TEXT, font=font(13))
    return im
