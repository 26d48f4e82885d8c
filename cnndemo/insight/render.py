"""Pictures for the "Why?" tab, as PIL images: attribution overlays, receptive-field boxes,
the mistakes gallery and the confusion matrix. Colour tables, fonts and upscaling come from
:mod:`cnndemo.inspection.render`."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from cnndemo.inspection import render as viz

SCALE = 8  # 28 x 28 -> 224 x 224, crisp pixels


def _np(a) -> np.ndarray:
    return a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float32)


def _grey(image) -> np.ndarray:
    """28 x 28 in [0, 1] -> 28 x 28 x 3 float in [0, 1], dimmed so colours on top stay readable."""
    g = np.clip(_np(image), 0, 1)
    return np.repeat(g[..., None], 3, -1) * 0.75


def overlay(image, attribution, signed: bool | None = None) -> Image.Image:
    """The input with an attribution map blended on top (opacity follows |attribution|).

    Signed maps (integrated gradients, occlusion) are red where the pixel supports the class and blue
    where it speaks against it; non-negative maps (Grad-CAM) use the magma heat colours."""
    a = _np(attribution)
    signed = bool(a.min() < 0) if signed is None else signed
    scale = float(np.abs(a).max()) or 1.0
    if signed:
        colours = viz.colorize(viz.normalise(a, scale, True), viz.DIVERGING) / 255.0
    else:
        colours = viz.colorize(np.clip(a / scale, 0, 1), viz.SEQUENTIAL) / 255.0
    alpha = np.clip(np.abs(a) / scale, 0, 1)[..., None] ** 0.7 * 0.85
    rgb = _grey(image) * (1 - alpha) + colours * alpha
    return Image.fromarray(viz.upscale((rgb * 255).round().astype(np.uint8), SCALE))


def receptive_field_image(image, effective, box: tuple[int, int, int, int]) -> Image.Image:
    """The input, the effective receptive field (|gradient|, magma) on top, and the theoretical box."""
    eff = np.clip(_np(effective), 0, 1)
    colours = viz.colorize(eff, viz.SEQUENTIAL) / 255.0
    alpha = eff[..., None] ** 0.5 * 0.8
    rgb = _grey(image) * (1 - alpha) + colours * alpha
    im = Image.fromarray(viz.upscale((rgb * 255).round().astype(np.uint8), SCALE))
    top, left, bottom, right = box
    if bottom > top and right > left:
        draw = ImageDraw.Draw(im)
        draw.rectangle([left * SCALE, top * SCALE, right * SCALE - 1, bottom * SCALE - 1], outline=(56, 189, 248), width=3)
    return im


def thumbnail(image_u8: np.ndarray, scale: int = 4) -> Image.Image:
    """A 28 x 28 uint8 test image as a crisp grey picture."""
    return viz.input_image(np.asarray(image_u8, np.float32) / 255, scale)


def confusion_image(confusion: np.ndarray, classes: list[str], cell: int = 34) -> Image.Image:
    """The confusion matrix as a picture: rows = true class, columns = predicted, counts written in;
    the diagonal in green, mistakes in red (shade by count, log scale)."""
    c = np.asarray(confusion, np.int64)
    n = len(classes)
    label_w, head = 96, 92
    width, height = label_w + n * cell + 8, head + n * cell + 8
    im = Image.new("RGB", (width, height), viz.BACKGROUND)
    draw = ImageDraw.Draw(im)
    off = c.copy()
    np.fill_diagonal(off, 0)
    peak = max(1, int(off.max()))
    small = viz.font(10)
    for j, name in enumerate(classes):  # predicted classes, written vertically
        label = Image.new("RGB", (head - 6, cell), viz.BACKGROUND)
        ImageDraw.Draw(label).text((2, cell // 2 - 6), name[:12], fill=viz.TEXT, font=small)
        im.paste(label.rotate(90, expand=True), (label_w + j * cell, 2))
    for i, name in enumerate(classes):
        y = head + i * cell
        draw.text((4, y + cell // 2 - 6), name[:14], fill=viz.TEXT, font=small)
        for j in range(n):
            x, v = label_w + j * cell, int(c[i, j])
            if i == j:
                fill = (187, 247, 208)
            elif v:
                t = np.log1p(v) / np.log1p(peak)
                fill = (255, int(228 - 150 * t), int(228 - 150 * t))
            else:
                fill = (255, 255, 255)
            draw.rectangle([x, y, x + cell - 2, y + cell - 2], fill=fill)
            if v:
                text = str(v)
                draw.text((x + cell // 2 - 3 * len(text), y + cell // 2 - 6), text, fill=viz.TEXT, font=small)
    draw.text((4, head - 16), "true \u2193 / predicted \u2192", fill=viz.MUTED, font=small)
    return im
