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
from PIL import Image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB; also the app's upload limit
MAX_PIXELS = 50_000_000  # 50 megapixels (a 4000 x 3000 phone photo is 12)
WORK_SIDE = 1024  # huge images are reduced to this longest side before anything else
# Only raster formats whose PIL decoders are self-contained: no EPS (runs Ghostscript), no PDF/SVG, no ICNS/FITS/...
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # a JPEG with several images opens as MPO
MAX_CANVAS_LAYERS = 1  # the app's canvas draws on one layer
MAX_CANVAS_SIDE = 2048  # a canvas (background, layer or composite) is at most 2048 x 2048 (the app's is 336)

# PIL's own decompression-bomb guard, from the app's limit (PIL warns above it and refuses above twice it;
# the app refuses above it, see _check_size): a header claiming more is refused before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


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


NOT_READABLE = "This file is not an image I can read (PNG, JPEG, GIF, BMP, TIFF or WebP)."


def _open_header(data: bytes) -> Image.Image:
    """PIL's lazy open (header only) of an allowed format, size-checked; no pixel is decoded yet."""
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise InputError(f"The image is too large to open safely; the limit is {MAX_PIXELS / 1e6:.0f} megapixels.") \
            from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is "not an image I can read"
        raise InputError(NOT_READABLE) from exc
    _check_size(*im.size)
    return im


def _open_bytes(data: bytes) -> Image.Image:
    """Open encoded image bytes of an allowed format (:data:`FORMATS`); only PIL's header is read before the checks."""
    if not data:
        raise InputError("The uploaded file is empty (0 bytes).")
    im = _open_header(data)
    try:
        if im.format in ("JPEG", "MPO") and max(im.size) > 2 * WORK_SIDE:
            im.draft(im.mode, (im.width // 4, im.height // 4))  # decode at reduced size: fast on big photos
        im.load()
    except Image.DecompressionBombError as exc:
        raise InputError("The image is too large to open safely.") from exc
    except Exception as exc:  # noqa: BLE001 - truncated data, bad CRCs, odd modes: all the same to the visitor
        raise InputError(NOT_READABLE) from exc
    return im


EXIF_ORIENTATION = 0x0112
_ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                 8: Image.Transpose.ROTATE_90}


def orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) of ``im``; 1 when there is none or the EXIF data is unreadable."""
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - broken EXIF is common and harmless: ignore it
        return 1
    return value if value in _ORIENTATIONS else 1


def apply_orientation(im: Image.Image, value: int) -> Image.Image:
    """``im`` turned upright for EXIF orientation ``value`` (call it *after* shrinking: cheap on small images)."""
    return im.transpose(_ORIENTATIONS[value]) if value in _ORIENTATIONS else im


def open_image(source: Any) -> Image.Image:
    """A PIL image from a path, bytes, PIL image or numpy array (H x W, H x W x 3 or H x W x 4)."""
    if source is None:
        raise InputError("No image: draw something or upload a picture.")
    if isinstance(source, Image.Image):
        _check_size(*source.size)
        if source.format is not None and source.format not in FORMATS:
            raise InputError(NOT_READABLE)
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


def _part_size(part: Any) -> tuple[int, int] | None:
    """(width, height) of one canvas part without decoding its pixels (None when absent)."""
    if part is None:
        return None
    if isinstance(part, dict):
        part = part.get("path")
        if not part:
            raise InputError("A canvas part is missing its file; please draw again.")
    if isinstance(part, np.ndarray):
        if part.ndim < 2:
            raise InputError(f"Unsupported canvas array shape {part.shape}.")
        return part.shape[1], part.shape[0]
    if isinstance(part, Image.Image):
        return part.size
    if isinstance(part, (str, os.PathLike)):
        path = Path(part)
        if not path.is_file():
            raise InputError("The canvas image could not be found; please draw again.")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise InputError(f"A canvas image is over the {MAX_UPLOAD_BYTES // 2**20} MB limit.")
        with open(path, "rb") as f:
            return _open_header(f.read(MAX_UPLOAD_BYTES)).size
    raise InputError(f"Unsupported canvas part {type(part).__name__}.")


def check_canvas(value: dict) -> None:
    """Refuse a canvas value ``{"background", "layers", "composite"}`` with more than :data:`MAX_CANVAS_LAYERS`
    layers or a part over :data:`MAX_CANVAS_SIDE`, reading only file headers (call before decoding)."""
    layers = value.get("layers") or []
    if not isinstance(layers, (list, tuple)):
        raise InputError("The canvas layers must be a list.")
    if len(layers) > MAX_CANVAS_LAYERS:
        raise InputError(f"The canvas has {len(layers)} layers; it may have at most {MAX_CANVAS_LAYERS}.")
    for part in [value.get("background"), value.get("composite"), *layers]:
        size = _part_size(part)
        if size is not None and max(size) > MAX_CANVAS_SIDE:
            raise InputError(f"The canvas is too large ({size[0]} x {size[1]}); "
                             f"the limit is {MAX_CANVAS_SIDE} x {MAX_CANVAS_SIDE}.")


def canvas_image(value: Any) -> Image.Image:
    """The drawing from a ``gr.Sketchpad`` / ``gr.ImageEditor`` value ``{"background", "layers", "composite"}``.

    Checked first (:func:`check_canvas`); uses the composite; without one, stacks the layers over the background.
    """
    if not isinstance(value, dict):
        return open_image(value)
    check_canvas(value)
    if value.get("composite") is not None:
        return open_image(value["composite"])
    parts = [open_image(v).convert("RGBA") for v in [value.get("background"), *(value.get("layers") or [])] if v is not None]
    if not parts:
        raise BlankInput("The canvas is blank: draw a digit (or an item of clothing).")
    out = Image.new("RGBA", parts[0].size, (0, 0, 0, 0))
    for p in parts:
        out = Image.alpha_composite(out, p.resize(out.size) if p.size != out.size else p)
    return out
