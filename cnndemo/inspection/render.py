"""Pictures of activations: crisp channel grids and heat maps as PIL images (PNG-ready).

Activations are mapped through a matplotlib colormap (a 256-entry lookup table; no pyplot)
and upscaled with nearest-neighbour so every activation stays a sharp square.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

SEQUENTIAL = "magma"  # for non-negative activations (after ReLU)
DIVERGING = "RdBu_r"  # for signed values (F(x), convs without ReLU): red > 0, blue < 0
BACKGROUND = (248, 250, 252)
TEXT = (30, 41, 59)
MUTED = (100, 116, 139)


@lru_cache(maxsize=8)
def lut(name: str) -> np.ndarray:
    """256 x 3 uint8 colour table of the matplotlib colormap ``name``."""
    from matplotlib import colormaps  # imported on first use: keeps start-up fast

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@lru_cache(maxsize=8)
def font(size: int = 11) -> ImageFont.ImageFont:
    """A small TrueType font (DejaVu Sans if present, else Pillow's default)."""
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


PNG_LEVEL = 1  # zlib level for the pictures' PNGs: 40% less encoding time than the default 6, ~15% bigger files


def png_ready(canvas: np.ndarray) -> Image.Image:
    """The RGB array as a PIL image whose ``save(..., "png")`` (Gradio's, too) uses :data:`PNG_LEVEL` (Pillow reads
    save parameters from ``Image.encoderinfo``): pictures are re-encoded several times a second while drawing."""
    im = Image.fromarray(canvas)
    im.encoderinfo = {"compress_level": PNG_LEVEL}
    return im


@lru_cache(maxsize=2048)
def _glyph(ch: str, size: int) -> tuple[np.ndarray, float]:
    """(coverage in [0, 1] of ``ch`` drawn at the origin of a line-high cell, advance width) at ``size``."""
    f = font(size)
    ascent, descent = f.getmetrics() if hasattr(f, "getmetrics") else (size, size // 4)
    advance = float(f.getlength(ch)) if hasattr(f, "getlength") else float(size // 2)
    cell = Image.new("L", (int(advance) + 3, ascent + descent), 0)
    ImageDraw.Draw(cell).text((0, 0), ch, fill=255, font=f)
    return np.asarray(cell, np.float32) / 255, advance


def draw_text(canvas: np.ndarray, xy: tuple[int, int], text: str, fill: tuple[int, int, int], size: int) -> None:
    """Draw ``text`` onto an H x W x 3 uint8 array in place, from cached glyphs (what ``ImageDraw.text`` draws, up to
    kerning, without rasterising the font on every call: the live canvas relabels dozens of channels per update)."""
    x, y = float(xy[0]), int(xy[1])
    colour = np.asarray(fill, np.float32)
    for ch in text:
        mask, advance = _glyph(ch, size)
        x0 = int(round(x))
        h = min(mask.shape[0], canvas.shape[0] - y)
        w = min(mask.shape[1], canvas.shape[1] - x0)
        if h > 0 and w > 0 and x0 >= 0 and y >= 0 and ch != " ":
            a = mask[:h, :w, None]
            region = canvas[y : y + h, x0 : x0 + w]
            region[:] = (region * (1 - a) + colour * a).round().astype(np.uint8)
        x += advance


def colorize(a: np.ndarray, cmap: str = SEQUENTIAL) -> np.ndarray:
    """Values in [0, 1] (H x W) -> H x W x 3 uint8 through ``cmap``."""
    idx = np.clip(np.nan_to_num(a) * 255, 0, 255).round().astype(np.uint8)
    return lut(cmap)[idx]


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer ``factor`` (crisp pixels, no blur)."""
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else rgb


def _as_numpy(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    return maps.detach().float().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps, np.float32)


def normalise(a: np.ndarray, scale: float, signed: bool) -> np.ndarray:
    """Map to [0, 1]: ``a / scale`` for non-negative maps, ``0.5 + a / (2 scale)`` for signed ones."""
    if scale <= 0:
        return np.full(a.shape, 0.5 if signed else 0.0, np.float32)
    return 0.5 + a / (2 * scale) if signed else a / scale


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
    a diverging colormap centred on zero.
    """
    a = _as_numpy(maps)
    if a.ndim == 2:
        a = a[None]
    order = (strongest_first(a) if strongest else list(range(len(a))))[:max_channels]
    signed = bool(a.min() < 0)
    cmap = DIVERGING if signed else SEQUENTIAL
    layer_peak = float(np.abs(a).max()) if a.size else 0.0
    factor = max(1, cell // max(a.shape[1], a.shape[2]))
    ch, cw = a.shape[1] * factor, a.shape[2] * factor
    label_h, gap, top = 15, 6, (22 if title else 4)
    cols = max(1, min(cols, len(order)))
    rows = max(1, -(-len(order) // cols))
    width = cols * cw + (cols + 1) * gap
    height = top + rows * (ch + label_h + gap) + gap
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    labels = []
    for k, c in enumerate(order):
        r, q = divmod(k, cols)
        y, x = top + r * (ch + label_h + gap), gap + q * (cw + gap)
        peak = float(np.abs(a[c]).max())
        tile = colorize(normalise(a[c], max(peak, 0.25 * layer_peak), signed), cmap)
        canvas[y : y + ch, x : x + cw] = upscale(tile, factor)
        labels.append((x, y + ch + 1, f"#{c}  {float(a[c].max()):.2f}"))
    for x, y, text in labels:
        draw_text(canvas, (x, y), text, MUTED, 10)
    if title:
        draw_text(canvas, (gap, 4), title, TEXT, 13)
    return png_ready(canvas)


def input_image(a: np.ndarray | torch.Tensor, factor: int = 8) -> Image.Image:
    """The 28 x 28 model input as a crisp grey image (white on black, like the dataset)."""
    a = _as_numpy(a).squeeze()
    g = np.clip(a * 255 if a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    return png_ready(upscale(np.stack([g] * 3, -1), factor))


def heatmap(a: np.ndarray, size: int, signed: bool, scale: float | None = None) -> np.ndarray:
    """One 2-D map as an RGB tile about ``size`` pixels wide (nearest-neighbour)."""
    scale = float(np.abs(a).max()) if scale is None else scale
    tile = colorize(normalise(a, scale, signed), DIVERGING if signed else SEQUENTIAL)
    return upscale(tile, max(1, size // max(a.shape)))


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
        tiles = [heatmap(x, cell, False, scale), heatmap(fx, cell, True), heatmap(out, cell, False, scale)]
        rows.append((b, tiles))
    tile_w = max(t.shape[1] for _, ts in rows for t in ts) if rows else cell
    tile_h = max(t.shape[0] for _, ts in rows for t in ts) if rows else cell
    width = label_w + 3 * (tile_w + gap) + gap
    height = head + len(rows) * (tile_h + gap) + gap
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    for r, (_, tiles) in enumerate(rows):
        y = head + r * (tile_h + gap)
        for k, t in enumerate(tiles):
            x = label_w + gap + k * (tile_w + gap)
            canvas[y : y + t.shape[0], x : x + t.shape[1]] = t
    for k, name in enumerate(("x (block input)", "F(x) (residual branch)", "out = relu(F(x) + x)")):
        draw_text(canvas, (label_w + gap + k * (tile_w + gap), 5), name, TEXT, 12)
    for r, (b, _) in enumerate(rows):
        y = head + r * (tile_h + gap)
        shape = "x".join(str(s) for s in b.x.shape)
        out_shape = "x".join(str(s) for s in b.out.shape)
        draw_text(canvas, (gap, y + 4), b.name.removeprefix("net."), TEXT, 13)
        draw_text(canvas, (gap, y + 24), f"in {shape}", MUTED, 11)
        draw_text(canvas, (gap, y + 40), f"out {out_shape}", MUTED, 11)
        draw_text(canvas, (gap, y + 58), f"|F(x)|/|x| = {b.ratio:.2f}", TEXT, 12)
    return png_ready(canvas)


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
