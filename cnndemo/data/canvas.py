"""The live drawing canvas's payload -> the ink as an image, framed like an upload (numpy, PIL; no gradio).

The browser canvas (:mod:`cnndemo.app.canvas`) renders the strokes a second time into a small
square (``w`` x ``h``, 112 x 112 by default), crops that to the ink's bounding box and sends the
crop's alpha channel (one byte per pixel, base64) as a JSON string, at most every ~90 ms while the
pen moves and once at pen-up::

    {"v": 1, "seq": 17, "final": false, "w": 112, "h": 112,
     "x": 30, "y": 12, "cw": 48, "ch": 80, "alpha": "<base64 of cw*ch bytes, row-major>"}

A blank canvas sends ``cw = ch = 0`` and ``alpha = ""``. ``seq`` grows with every send; the server
echoes it so the page knows which drawing the prediction belongs to.

Everything is checked before decoding (size, JSON shape, sizes, base64 length), so an oversize or malformed
payload is refused with an :class:`~cnndemo.data.decode.InputError` (a ValueError) without allocating anything
big. The size is checked first whatever the payload's JSON type (a string, or the object, list, ... a client
sent instead), and no message is longer than ``MAX_MESSAGE_CHARS`` or repeats what was sent.
:func:`ink_image` turns the decoded alpha into the RGBA image that :func:`cnndemo.data.framing.prepare`
frames exactly as it frames an upload (crop, fit into 20 x 20, centre of mass).
"""

from __future__ import annotations

import base64
import binascii
import json
from itertools import islice
from typing import Any

import numpy as np
from PIL import Image

from cnndemo.data.decode import InputError
from cnndemo.data.framing import Prepared, prepare

VERSION = 1
SIDE = 112  # the browser's default bitmap side
MAX_SIDE = 256  # largest w / h accepted
MAX_PAYLOAD_CHARS = 4 * (MAX_SIDE * MAX_SIDE + 2) // 3 + 1024  # a full 256 x 256 crop plus the JSON around it
BLANK_LEVEL = 8  # an alpha at most this (of 255) everywhere counts as a blank canvas
_KEYS = {"v", "seq", "final", "w", "h", "x", "y", "cw", "ch", "alpha"}
MAX_MESSAGE_CHARS = 240  # every message here; the app adds a short prefix and stays within 300


def _error(message: str) -> InputError:
    """An InputError whose message is one line of at most ``MAX_MESSAGE_CHARS``."""
    line = " ".join(message.split())
    return InputError(line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 1] + "…")


def _brief(value: Any) -> str:
    """What a client sent, named without repeating it: its type, and its value only when that is short."""
    if value is None or isinstance(value, (bool, int, float)) and len(repr(value)) <= 24:
        return repr(value)
    if isinstance(value, str) and len(value) <= 24:
        return repr(value)
    return f"a {type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (str, list, dict)) else "")


def _json_chars(payload: Any, limit: int) -> int:
    """About how many characters ``payload`` takes as JSON (never fewer than the real count, give or take
    quotes): counted only until the count passes ``limit``, so a huge payload costs no more than a small one."""
    total, stack = 0, [payload]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 1 + len(item)  # braces, colons and commas
            for key, value in islice(item.items(), limit):
                stack += [key if isinstance(key, str) else str(key)[:limit], value]
        elif isinstance(item, (list, tuple)):
            total += 1 + len(item)
            stack.extend(islice(item, limit))
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() * 30103 // 100000 + 2  # its decimal digits, without converting it
        else:
            total += 5  # a float, true, false or null
    return total


def _int(obj: dict, key: str, lo: int, hi: int) -> int:
    """``obj[key]`` as an int in [lo, hi], else ValueError."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _error(f"canvas payload: {key!r} must be an integer in [{lo}, {hi}], got {_brief(value)}")
    return value


def parse_payload(payload: Any) -> dict:
    """The payload (a JSON string, or the dict it encodes) with its header checked; the alpha not decoded.

    Raises ValueError for an oversize payload, a wrong version, sizes out of range, a crop outside
    the bitmap, or a base64 string whose length does not match the crop.
    """
    is_text = isinstance(payload, (str, bytes, bytearray))
    size = len(payload) if is_text else _json_chars(payload, MAX_PAYLOAD_CHARS)
    if size > MAX_PAYLOAD_CHARS:  # first, whatever the JSON type: nothing else is looked at before
        what = f"{size} characters" if is_text else f"over {MAX_PAYLOAD_CHARS} characters as JSON"
        raise _error(f"canvas payload too large: {what} (limit {MAX_PAYLOAD_CHARS})")
    if is_text:
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            where = f" at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
            raise _error(f"canvas payload is not JSON{where}") from None
    if not isinstance(payload, dict):
        raise _error(f"canvas payload must be a JSON object, got {type(payload).__name__}")
    unknown = set(payload) - _KEYS
    if unknown:
        names = ", ".join(repr(k if len(str(k)) <= 16 else str(k)[:15] + "…") for k in sorted(map(str, unknown))[:4])
        more = f" and {len(unknown) - 4} more" if len(unknown) > 4 else ""
        raise _error(f"canvas payload: unknown keys {names}{more} (expected only {', '.join(sorted(_KEYS))})")
    if payload.get("v") != VERSION:
        raise _error(f"canvas payload: version {_brief(payload.get('v'))} is not {VERSION}")
    out = {"seq": _int(payload, "seq", 0, 2**53), "final": bool(payload.get("final", False))}
    w, h = _int(payload, "w", 1, MAX_SIDE), _int(payload, "h", 1, MAX_SIDE)
    cw, ch = _int(payload, "cw", 0, w), _int(payload, "ch", 0, h)
    x, y = _int(payload, "x", 0, w - cw), _int(payload, "y", 0, h - ch)
    alpha = payload.get("alpha")
    if not isinstance(alpha, str):
        raise _error("canvas payload: 'alpha' must be a base64 string")
    expected = 4 * -(-(cw * ch) // 3)
    if len(alpha) != expected:
        raise _error(f"canvas payload: 'alpha' has {len(alpha)} base64 characters, a {cw} x {ch} crop needs {expected}")
    out.update(w=w, h=h, x=x, y=y, cw=cw, ch=ch, alpha=alpha)
    return out


def payload_seq(payload: Any) -> int:
    """The payload's sequence number (0 for an empty value); ValueError when the payload is malformed."""
    if payload is None or payload == "":
        return 0
    return parse_payload(payload)["seq"]


def decode_canvas(payload: Any) -> np.ndarray | None:
    """The ink's alpha as uint8 ``h x w`` (0 = paper, 255 = full ink), or None for a blank canvas.

    ``payload`` is the canvas value (JSON string or dict); None or "" mean blank. Size and shape are
    checked before anything is decoded (ValueError on oversize or malformed payloads).
    """
    if payload is None or payload == "":
        return None
    p = parse_payload(payload)
    if p["cw"] == 0 or p["ch"] == 0:
        return None
    try:
        raw = base64.b64decode(p["alpha"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _error(f"canvas payload: 'alpha' is not valid base64: {exc}") from None
    if len(raw) != p["cw"] * p["ch"]:
        raise _error(f"canvas payload: 'alpha' decodes to {len(raw)} bytes, expected {p['cw'] * p['ch']}")
    out = np.zeros((p["h"], p["w"]), np.uint8)
    out[p["y"] : p["y"] + p["ch"], p["x"] : p["x"] + p["cw"]] = np.frombuffer(raw, np.uint8).reshape(p["ch"], p["cw"])
    if int(out.max()) <= BLANK_LEVEL:
        return None
    return out


def encode_canvas(alpha: np.ndarray | None, seq: int = 1, final: bool = False, side: int | None = None) -> str:
    """The payload the browser would send for ``alpha`` (uint8 h x w); None = a blank ``side`` square.

    Mirrors the JavaScript encoder: crop to the bounding box of the non-zero alpha. Used by the
    tests and the benchmark.
    """
    if alpha is None:
        s = side or SIDE
        body = {"w": s, "h": s, "x": 0, "y": 0, "cw": 0, "ch": 0, "alpha": ""}
    else:
        alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
        h, w = alpha.shape
        rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
        if rows.size == 0:
            body = {"w": w, "h": h, "x": 0, "y": 0, "cw": 0, "ch": 0, "alpha": ""}
        else:
            t, b, l, r = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            crop = np.ascontiguousarray(alpha[t:b, l:r])
            body = {"w": w, "h": h, "x": l, "y": t, "cw": r - l, "ch": b - t,
                    "alpha": base64.b64encode(crop.tobytes()).decode("ascii")}
    return json.dumps({"v": VERSION, "seq": seq, "final": final, **body}, separators=(",", ":"))


def ink_image(alpha: np.ndarray) -> Image.Image:
    """Black ink whose opacity is ``alpha``, as an RGBA PIL image (what a transparent PNG of the drawing holds)."""
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    return Image.fromarray(rgba, mode="RGBA")


def prepare_canvas(payload: Any, dataset: str = "mnist") -> Prepared | None:
    """The canvas payload framed for ``dataset`` exactly like an upload, or None for a blank canvas.

    Raises ValueError for a malformed payload and :class:`~cnndemo.data.decode.InputError`
    when the ink is too faint to classify.
    """
    alpha = decode_canvas(payload)
    if alpha is None:
        return None
    return prepare(ink_image(alpha), dataset)


def canvas_ink(payload: Any) -> Image.Image | None:
    """The drawing as black ink on a transparent RGBA image (what an upload of it would hold), or None when blank."""
    alpha = decode_canvas(payload)
    return None if alpha is None else ink_image(alpha)
