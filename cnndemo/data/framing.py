"""Frame a user image the way the dataset was made: whatever the user gives -> the 28 x 28 input a model expects.

Plain Python (PIL, numpy, torch); no gradio. The rules follow how the datasets were made:

* **MNIST digits**: take the ink (from the alpha channel, or dark-on-light, or light-on-dark),
  crop to the ink's bounding box, even out the stroke width, fit the digit into 20 x 20 keeping
  its aspect ratio, then place it in 28 x 28 so that its centre of mass is at the centre
  (LeCun et al.: "centered in a 28x28 image by computing the center of mass of the pixels").
* **Fashion-MNIST clothing**: trim to the object, scale its longest side to 28 and centre it
  (Xiao et al.: "resizing the longest edge to 28 ... extending to 28x28").

Everything that can go wrong with the input raises :class:`InputError` with a message meant
for the user (blank canvas, empty or unreadable file, too large an image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.nn import functional as F

from cnndemo import catalog
from cnndemo.data.decode import WORK_SIDE, BlankInput, InputError, canvas_image, open_image

CROP_SIDE = 256  # the cropped object is worked on at most this size
DIGIT_BOX = 20  # MNIST: the digit fits in 20 x 20 ...
SIDE = 28  # ... inside a 28 x 28 image
STROKE_RATIO = 0.12  # MNIST stroke width / longest side of the digit (measured on the test set)
BORDER = 0.03  # width of the frame used to guess the background, as a fraction of the side


@dataclass
class Prepared:
    """A model-ready input: ``tensor`` is 1 x 1 x 28 x 28 float in [0, 1], white object on black."""

    tensor: torch.Tensor
    notes: list[str] = field(default_factory=list)

    @property
    def image(self) -> np.ndarray:
        """The 28 x 28 input as uint8 (what the network sees)."""
        return (self.tensor[0, 0].clamp(0, 1) * 255).round().byte().numpy()


# --------------------------------------------------------------------------- ink


def _shrink(im: Image.Image, side: int) -> Image.Image:
    """Reduce ``im`` so its longest side is at most ``side`` (area averaging)."""
    if max(im.size) <= side:
        return im
    scale = side / max(im.size)
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)


def _normalise_mode(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(gray in [0, 1], alpha in [0, 1] or None) for any PIL mode (16-bit, palette, CMYK, ...)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im.convert("F") if im.mode.startswith("I;16") else im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        return ((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)), None
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("PA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    alpha = None
    if im.mode in ("LA", "RGBA"):
        alpha = np.asarray(im.getchannel("A"), dtype=np.float32) / 255
        im = im.convert("L") if im.mode == "LA" else im.convert("RGB")
    gray = np.asarray(im.convert("L"), dtype=np.float32) / 255
    return gray, alpha


def _peak(ink: np.ndarray) -> float:
    """The ink's bright level, ignoring isolated bright pixels (max over 2 x 2 minima)."""
    if ink.size == 0:
        return 0.0
    if min(ink.shape) < 2:
        return float(ink.max())
    a = ink
    smooth = float(np.minimum(np.minimum(a[:-1, :-1], a[1:, :-1]), np.minimum(a[:-1, 1:], a[1:, 1:])).max())
    return max(smooth, float(np.percentile(a, 99.9)))


def ink_of(im: Image.Image) -> tuple[np.ndarray, list[str]]:
    """The object as light-on-dark ink in [0, 1] (float32 H x W), and notes on what was done.

    Alpha channel with transparency: ink = opacity (times the darkness, or lightness, of the
    colour, whichever carries the drawing). Otherwise the background level and polarity are
    guessed from the image border: a light border means dark-on-light, which is inverted.
    """
    notes: list[str] = []
    gray, alpha = _normalise_mode(im)
    if alpha is not None and alpha.min() < 0.9 and alpha.max() > 0.1:
        dark, light = alpha * (1 - gray), alpha * gray
        ink = dark if dark.sum() >= light.sum() else light
        notes.append("ink taken from the transparency (alpha channel)")
        background = 0.0
    else:
        h, w = gray.shape
        b = max(1, round(BORDER * min(h, w)))
        border = np.concatenate([gray[:b].ravel(), gray[-b:].ravel(), gray[:, :b].ravel(), gray[:, -b:].ravel()])
        level = float(np.median(border))
        if level > 0.5:
            ink, background = 1 - gray, 1 - level
            notes.append("light background detected: colours inverted to light-on-dark")
        else:
            ink, background = gray, level
    peak = _peak(ink)
    if peak - background < 0.1:
        raise BlankInput("The image is blank: there is nothing to classify (draw or upload a digit or a piece of clothing).")
    ink = np.clip((ink - background) / (peak - background), 0, 1).astype(np.float32)
    return ink, notes


# --------------------------------------------------------------------------- framing


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), exclusive ends, of the True pixels; None if there are none."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a float image: area averaging when shrinking, bilinear when enlarging."""
    if a.shape == (height, width):
        return a
    shrinking = width <= a.shape[1] and height <= a.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((width, height), method), dtype=np.float32)


def _crop(ink: np.ndarray, threshold: float) -> np.ndarray:
    """The ink cropped to the bounding box of the pixels above ``threshold``."""
    box = _bbox(ink > threshold)
    if box is None:
        raise BlankInput("The image is blank: there is nothing to classify.")
    t, b, l, r = box
    return ink[t:b, l:r]


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 x ink area / boundary pixels (of the ink above half level)."""
    mask = torch.from_numpy(ink > 0.5).float()[None, None]
    eroded = -F.max_pool2d(-mask, 3, 1, 1)
    boundary = float((mask - eroded).sum())
    return 2 * float(mask.sum()) / boundary if boundary else 0.0


def _morph(ink: np.ndarray, radius: int, dilate: bool) -> np.ndarray:
    """Grey-level dilation (max filter) or erosion (min filter) with a (2r+1) square, keeping the size."""
    t = torch.from_numpy(np.ascontiguousarray(ink))[None, None]
    k = 2 * radius + 1
    out = F.max_pool2d(t, k, 1, radius) if dilate else -F.max_pool2d(-t, k, 1, radius)
    return out[0, 0].numpy()


def even_strokes(ink: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Thicken hair-thin strokes and thin out fat ones towards MNIST's stroke/size ratio.

    ``ink`` is a crop to the digit's bounding box. Returns the new crop and a note (or None).
    """
    side = max(ink.shape)
    target = STROKE_RATIO * side
    width = stroke_width(ink)
    if width <= 0:
        return ink, None
    if width < 0.6 * target:
        r = max(1, round((target - width) / 2))
        padded = np.pad(ink, r)
        return _morph(padded, r, dilate=True), "thin strokes thickened"
    if width > 1.8 * target:
        r = max(1, round((width - target) / 2))
        thinned = _morph(ink, r, dilate=False)
        if (thinned > 0.5).sum() >= 0.25 * (ink > 0.5).sum():  # never erase the digit
            return thinned, "thick strokes thinned"
    return ink, None


def _place_by_mass(small: np.ndarray) -> np.ndarray:
    """Put ``small`` into 28 x 28 with its centre of mass at pixel (14, 14), as MNIST does."""
    h, w = small.shape
    mass = small.sum()
    ys, xs = np.arange(h), np.arange(w)
    cy = float((small.sum(1) * ys).sum() / mass) if mass else (h - 1) / 2
    cx = float((small.sum(0) * xs).sum() / mass) if mass else (w - 1) / 2
    top = min(max(round(SIDE / 2 - cy), 0), SIDE - h)
    left = min(max(round(SIDE / 2 - cx), 0), SIDE - w)
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + h, left : left + w] = small
    return out


def _fit(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale ``crop`` so its longest side is ``box``, keeping the aspect ratio."""
    h, w = crop.shape
    scale = box / max(h, w)
    return np.clip(_resize(crop, max(1, round(w * scale)), max(1, round(h * scale))), 0, 1)


def _work_crop(ink: np.ndarray, threshold: float) -> np.ndarray:
    """Crop to the object and bring it to at most :data:`CROP_SIDE` (renormalising the ink level)."""
    crop = _crop(ink, threshold)
    if max(crop.shape) > CROP_SIDE:
        crop = _fit(crop, CROP_SIDE)
        peak = _peak(crop)
        if peak > 0:
            crop = np.clip(crop / peak, 0, 1)
    return crop


def frame_digit(ink: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """MNIST framing: crop, even the strokes, fit in 20 x 20 keeping aspect, centre of mass at the centre."""
    ink = np.where(ink < 0.2, 0, (ink - 0.2) / 0.8).astype(np.float32)  # paper grain and shadows off
    crop = _work_crop(ink, 0.0)
    crop, note = even_strokes(crop)
    crop = _crop(crop, 0.05)
    return _place_by_mass(_fit(crop, DIGIT_BOX)), [note] if note else []


def frame_clothing(ink: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Fashion-MNIST framing: trim to the object, longest side to 28, centred."""
    ink = np.where(ink < 0.06, 0, ink).astype(np.float32)
    small = _fit(_work_crop(ink, 0.0), SIDE)
    h, w = small.shape
    out = np.zeros((SIDE, SIDE), np.float32)
    top, left = (SIDE - h + 1) // 2, (SIDE - w + 1) // 2
    out[top : top + h, left : left + w] = small
    return out, []


def _resizable(im: Image.Image) -> Image.Image:
    """Convert modes that PIL cannot resize smoothly (palette, 1-bit, 16-bit, CMYK, ...)."""
    if im.mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I;16"):
        return im.convert("I")
    if im.mode in ("PA", "La", "RGBa"):
        return im.convert("RGBA")
    if im.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return im.convert("RGB")
    return im


def prepare(source: Any, dataset: str) -> Prepared:
    """Any input (canvas dict, path, bytes, PIL image, array) -> :class:`Prepared` for ``dataset``.

    Raises :class:`InputError` with a user-facing message when there is nothing usable.
    """
    if dataset not in catalog.DATASETS:
        raise InputError(f"Unknown dataset {dataset!r}; choose one of {', '.join(catalog.DATASETS)}.")
    im = canvas_image(source) if isinstance(source, dict) else open_image(source)
    im = ImageOps.exif_transpose(im) if getattr(im, "getexif", None) and im.getexif() else im
    im = _shrink(_resizable(im), WORK_SIDE)
    ink, notes = ink_of(im)
    small, more = frame_digit(ink) if catalog.DATASETS[dataset].framing == "digit" else frame_clothing(ink)
    return Prepared(torch.from_numpy(small)[None, None], notes + more)
