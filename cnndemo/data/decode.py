"""Open what a visitor sends (a file path, bytes, a PIL image, an array, a canvas value) as a PIL image.

Every limit is checked here, before the pixels are decoded where possible; everything that can go wrong
raises :class:`InputError` with a message meant for the user. No gradio; :mod:`cnndemo.data.framing`
turns the opened image into the 28 x 28 input.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB; also the app's upload limit
MAX_PIXELS = 50_000_000  # 50 megapixels (a 4000 x 3000 phone photo is 12)
WORK_SIDE = 1024  # huge images are reduced to this longest side before anything else


class InputError(ValueError):
    """The input cannot be classified; ``str(error)`` is a message for the user."""


class BlankInput(InputError):
    """There is nothing drawn or visible to classify (an empty canvas is not a mistake: the app just waits)."""


# --------------------------------------------------------------------------- opening


def _check_size(width: int, height: int) -> None:
    """Refuse images above :data:`MAX_PIXELS`."""
    if width * height > MAX_PIXELS:
        raise InputError(
            f"The image is too large ({width} x {height} = {width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels."
        )
    if width < 1 or height < 1:
        raise InputError("The image is empty (0 pixels).")


def _open_file(path: str | os.PathLike) -> Image.Image:
    """Open an image file, with user-facing errors for missing, empty, too-big and unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise InputError("The uploaded file could not be found; please upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise InputError("The uploaded file is empty (0 bytes).")
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"The file is {size / 2**20:.1f} MB; the upload limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    return _open_bytes(path.read_bytes())


def _open_bytes(data: bytes) -> Image.Image:
    """Open encoded image bytes (PNG, JPEG, WebP, BMP, TIFF, GIF, ...)."""
    if not data:
        raise InputError("The uploaded file is empty (0 bytes).")
    try:
        im = Image.open(io.BytesIO(data))
        _check_size(*im.size)
        if im.format == "JPEG" and max(im.size) > 2 * WORK_SIDE:
            im.draft(im.mode, (im.width // 4, im.height // 4))  # decode at reduced size: fast on big photos
        im.load()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError("The image is too large to open safely.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError("This file is not an image I can read (try PNG or JPEG).") from exc
    return im


def open_image(source: Any) -> Image.Image:
    """A PIL image from a path, bytes, PIL image or numpy array (H x W, H x W x 3 or H x W x 4)."""
    if source is None:
        raise InputError("No image: draw something or upload a picture.")
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_bytes(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return _open_file(source)
    if isinstance(source, dict) and ("path" in source or "url" in source):  # a FileData-like dict
        if source.get("path"):
            return _open_file(source["path"])
        raise InputError("The uploaded file could not be found; please upload it again.")
    if isinstance(source, np.ndarray):
        return _array_to_image(source)
    raise InputError(f"Unsupported input type {type(source).__name__}.")


def _array_to_image(arr: np.ndarray) -> Image.Image:
    """numpy -> PIL, accepting uint8/uint16/float arrays with 1, 2, 3 or 4 channels."""
    if arr.size == 0:
        raise InputError("The image is empty (0 pixels).")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise InputError(f"Unsupported image array shape {arr.shape}.")
    _check_size(arr.shape[1], arr.shape[0])
    if arr.dtype != np.uint8:
        a = arr.astype(np.float32)
        if a.max() <= 1.0 and a.min() >= 0.0:
            a = a * 255
        elif a.max() > 255:
            a = a * (255.0 / a.max())
        arr = np.clip(a, 0, 255).round().astype(np.uint8)
    mode = {2: "L", 3: {2: "LA", 3: "RGB", 4: "RGBA"}.get(arr.shape[-1])}[arr.ndim]
    return Image.fromarray(arr, mode=mode)


def canvas_image(value: Any) -> Image.Image:
    """The drawing from a ``gr.Sketchpad`` / ``gr.ImageEditor`` value ``{"background", "layers", "composite"}``.

    Uses the composite; without one, stacks the layers over the background.
    """
    if not isinstance(value, dict):
        return open_image(value)
    if value.get("composite") is not None:
        return open_image(value["composite"])
    parts = [open_image(v).convert("RGBA") for v in [value.get("background"), *(value.get("layers") or [])] if v is not None]
    if not parts:
        raise BlankInput("The canvas is blank: draw a digit (or an item of clothing).")
    out = Image.new("RGBA", parts[0].size, (0, 0, 0, 0))
    for p in parts:
        out = Image.alpha_composite(out, p.resize(out.size) if p.size != out.size else p)
    return out
