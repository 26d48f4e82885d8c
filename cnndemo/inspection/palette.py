"""Indexed-colour pictures: draw activations and labels one byte per pixel, encode them as palette PNGs.

The live canvas re-renders a tab's pictures several times a second, and Gradio PNG-encodes each of them. An RGB
PNG spends most of its encoding time in Pillow's per-row filter search; a palette PNG skips it (4.6 ms -> 1.0 ms
for a 64-channel grid), and every step before it moves a third of the bytes. The pictures fit in 256 colours:

* index 0 is the background;
* then :data:`SHADES` anti-aliasing shades of each ink in :data:`INKS` over the background (text is only ever
  drawn on the background: in label strips, titles and margins);
* the rest is shared by the picture's colormaps: 224 levels for one, 112 each for two. Neighbouring levels
  differ by at most a couple of units of 255, below what an eye (or the tests) can tell.

A :class:`Sheet` is that canvas; :meth:`Sheet.image` gives the PIL image, ready for ``save(..., "png")``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (248, 250, 252)
TEXT = (30, 41, 59)
MUTED = (100, 116, 139)
INKS = (TEXT, MUTED)
SHADES = 15  # anti-aliasing levels per ink
PNG_LEVEL = 1  # zlib level: pictures are re-encoded several times a second while drawing


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


@lru_cache(maxsize=2048)
def _glyph(ch: str, size: int) -> tuple[np.ndarray, float]:
    """(coverage in [0, 1] of ``ch`` drawn at the origin of a line-high cell, advance width) at ``size``."""
    f = font(size)
    ascent, descent = f.getmetrics() if hasattr(f, "getmetrics") else (size, size // 4)
    advance = float(f.getlength(ch)) if hasattr(f, "getlength") else float(size // 2)
    cell = Image.new("L", (int(advance) + 3, ascent + descent), 0)
    ImageDraw.Draw(cell).text((0, 0), ch, fill=255, font=f)
    return np.asarray(cell, np.float32) / 255, advance


@lru_cache(maxsize=8192)
def text_shades(text: str, size: int) -> np.ndarray:
    """``text`` as a line-high uint8 array of shades 0 (none) .. :data:`SHADES` (full ink), from cached glyphs
    (what ``ImageDraw.text`` draws, up to kerning). Cached per string: channel labels repeat between updates."""
    parts, x = [], 0.0
    for ch in text:
        mask, advance = _glyph(ch, size)
        parts.append((round(x), mask))
        x += advance
    height = max((m.shape[0] for _, m in parts), default=0)
    cover = np.zeros((height, max((x0 + m.shape[1] for x0, m in parts), default=0)), np.float32)
    for x0, m in parts:
        region = cover[: m.shape[0], x0 : x0 + m.shape[1]]
        np.maximum(region, m, out=region)
    return (cover * SHADES).round().astype(np.uint8)


@lru_cache(maxsize=8)
def palette(cmaps: tuple[str, ...]) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """(the 768-byte palette, ``{cmap: (first index, levels)}``) for pictures using ``cmaps``."""
    colours = [np.asarray([BACKGROUND], np.float64)]
    for ink in INKS:
        a = np.arange(1, SHADES + 1)[:, None] / SHADES
        colours.append(np.asarray(BACKGROUND) * (1 - a) + np.asarray(ink) * a)
    first = 1 + len(INKS) * SHADES
    levels = (256 - first) // max(1, len(cmaps))
    ranges = {}
    for k, name in enumerate(cmaps):
        ranges[name] = (first + k * levels, levels)
        colours.append(lut(name)[np.linspace(0, 255, levels).round().astype(int)])
    table = np.concatenate(colours).round().clip(0, 255).astype(np.uint8)
    table = np.concatenate([table, np.zeros((256 - len(table), 3), np.uint8)])
    return table.tobytes(), ranges


class Sheet:
    """An indexed-colour canvas of ``height`` x ``width`` on the background, drawing with the colormaps ``cmaps``."""

    def __init__(self, height: int, width: int, cmaps: tuple[str, ...]):
        self.pixels = np.zeros((height, width), np.uint8)
        self.cmaps = tuple(cmaps)
        self._palette, self._ranges = palette(self.cmaps)

    def indices(self, values: np.ndarray, cmap: str) -> np.ndarray:
        """Values in [0, 1] (any shape) -> palette indices of ``cmap``'s levels (NaN counts as 0)."""
        first, levels = self._ranges[cmap]
        v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (levels - 1)
        return (v.round() + first).astype(np.uint8)

    def paste(self, y: int, x: int, tile: np.ndarray) -> None:
        """Put a tile of palette indices with its top-left corner at (``y``, ``x``)."""
        self.pixels[y : y + tile.shape[0], x : x + tile.shape[1]] = tile

    def text(self, xy: tuple[int, int], text: str, ink: tuple[int, int, int], size: int) -> None:
        """Draw ``text`` in ``ink`` (one of :data:`INKS`) with its top-left at ``xy``, clipped to the sheet."""
        shades = text_shades(text, size)
        x, y = int(xy[0]), int(xy[1])
        h, w = min(shades.shape[0], self.pixels.shape[0] - y), min(shades.shape[1], self.pixels.shape[1] - x)
        if h <= 0 or w <= 0 or x < 0 or y < 0:
            return
        m = shades[:h, :w]
        offset = INKS.index(ink) * SHADES  # shade s of ink k is index 1 + k * SHADES + s - 1
        np.copyto(self.pixels[y : y + h, x : x + w], m + np.uint8(offset), where=m > 0)

    def image(self) -> Image.Image:
        """The sheet as a palette ("P") PIL image whose PNG encoding (Gradio's too) uses :data:`PNG_LEVEL`
        (Pillow reads save parameters from ``Image.encoderinfo``)."""
        im = Image.frombytes("P", (self.pixels.shape[1], self.pixels.shape[0]), self.pixels.tobytes())
        im.putpalette(self._palette)
        im.encoderinfo = {"compress_level": PNG_LEVEL}
        return im
