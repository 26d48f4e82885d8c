"""The live canvas's payload (cnndemo.data.canvas): decoding, limits, blank canvases, and the same
28 x 28 as the upload path for the same strokes."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cnndemo.data.canvas import (MAX_PAYLOAD_CHARS, MAX_SIDE, SIDE, decode_canvas, encode_canvas, ink_image,
                                  parse_payload, payload_seq, prepare_canvas)
from cnndemo.train.checkpoints import list_pretrained, load_pretrained
from cnndemo.data.framing import prepare

# Strokes in fractions of the drawing area (as the browser test draws them).
SEVEN = [[(0.28, 0.22), (0.72, 0.22), (0.66, 0.34), (0.55, 0.55), (0.46, 0.80)]]
ONE = [[(0.52, 0.18), (0.50, 0.50), (0.48, 0.82)]]
FOUR = [[(0.30, 0.20), (0.26, 0.55), (0.70, 0.55)], [(0.60, 0.25), (0.58, 0.85)]]
BRUSH = 0.06  # brush width / canvas side, as in cnndemo/app/canvas.py


def render(strokes, side: int, width: float = BRUSH, scale: int = 4) -> np.ndarray:
    """Anti-aliased round-capped strokes as uint8 alpha (side x side): drawn at ``scale`` x, box-averaged down."""
    big = side * scale
    im = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(im)
    w = width * big
    for stroke in strokes:
        pts = [(u * big, v * big) for u, v in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=round(w), joint="curve")
        for x, y in pts:
            draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)
    return np.asarray(im.resize((side, side), Image.Resampling.BOX))


def upload_path_image(alpha: np.ndarray, tmp_path, name: str) -> np.ndarray:
    """The drawing as a black-on-white PNG file through the upload path: the 28 x 28 uint8."""
    path = tmp_path / f"{name}.png"
    Image.fromarray(255 - alpha).convert("RGB").save(path)
    return prepare(str(path), "mnist").image.astype(int)


def test_round_trip_keeps_the_pixels():
    alpha = render(SEVEN, SIDE)
    payload = encode_canvas(alpha, seq=7, final=True)
    assert np.array_equal(decode_canvas(payload), alpha)
    assert decode_canvas(json.loads(payload)).shape == (SIDE, SIDE)
    assert payload_seq(payload) == 7 and parse_payload(payload)["final"] is True
    # Compact: only the ink's bounding box travels, a few kB.
    assert len(payload) < 12_000


@pytest.mark.parametrize("blank", [None, "", encode_canvas(None, seq=3), encode_canvas(np.zeros((SIDE, SIDE), np.uint8)),
                                   encode_canvas(np.full((SIDE, SIDE), 5, np.uint8))])
def test_blank_canvas_is_none(blank):
    assert decode_canvas(blank) is None
    assert prepare_canvas(blank) is None


def test_seq_of_empty_value_is_zero():
    assert payload_seq(None) == 0 and payload_seq("") == 0


def _payload(**changes) -> str:
    p = json.loads(encode_canvas(render(ONE, SIDE)))
    p.update(changes)
    return json.dumps(p)


@pytest.mark.parametrize("changes, message", [
    ({"v": 2}, "version"),
    ({"w": MAX_SIDE + 1}, "'w'"),
    ({"h": 0}, "'h'"),
    ({"cw": SIDE + 1}, "'cw'"),
    ({"x": SIDE}, "'x'"),
    ({"seq": -1}, "'seq'"),
    ({"seq": "3"}, "'seq'"),
    ({"alpha": "AAAA"}, "base64 characters"),
    ({"alpha": 12}, "base64 string"),
    ({"extra": 1}, "unknown keys"),
])
def test_malformed_payloads_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        decode_canvas(_payload(**changes))


def test_bad_base64_is_refused():
    p = json.loads(_payload())
    p["alpha"] = "!" * len(p["alpha"])
    with pytest.raises(ValueError, match="base64"):
        decode_canvas(p)


@pytest.mark.parametrize("value", ["not json", "[1, 2]", "42"])
def test_non_object_payloads_are_refused(value):
    with pytest.raises(ValueError):
        decode_canvas(value)


def test_oversize_payload_is_refused_before_parsing():
    huge = '{"v": 1, "alpha": "' + "A" * MAX_PAYLOAD_CHARS + '"}'
    with pytest.raises(ValueError, match="too large"):
        decode_canvas(huge)


def test_largest_allowed_bitmap_decodes():
    alpha = np.full((MAX_SIDE, MAX_SIDE), 200, np.uint8)
    payload = encode_canvas(alpha)
    assert len(payload) <= MAX_PAYLOAD_CHARS
    assert decode_canvas(payload).shape == (MAX_SIDE, MAX_SIDE)


def test_ink_image_is_black_ink_with_alpha():
    im = ink_image(render(ONE, SIDE))
    assert im.mode == "RGBA" and im.size == (SIDE, SIDE)
    assert np.asarray(im)[..., :3].max() == 0


@pytest.mark.parametrize("name, strokes", [("seven", SEVEN), ("one", ONE), ("four", FOUR)])
def test_same_28x28_as_the_upload_path(tmp_path, name, strokes):
    """The browser's bitmap through the payload vs the same bitmap saved as a PNG and uploaded."""
    alpha = render(strokes, SIDE)
    live = prepare_canvas(encode_canvas(alpha), "mnist").image.astype(int)
    uploaded = upload_path_image(alpha, tmp_path, name)
    assert live.max() > 200
    assert np.abs(live - uploaded).max() <= 1


@pytest.mark.parametrize("name, strokes, digit", [("seven", SEVEN, "7"), ("one", ONE, "1"), ("four", FOUR, "4")])
def test_same_prediction_as_a_full_size_upload(tmp_path, name, strokes, digit):
    """The 112 x 112 live bitmap and a 448 x 448 PNG of the same strokes (what the old sketchpad sent)
    frame to nearly the same 28 x 28 and get the same answer from a real model."""
    if ("residual_net", "mnist") not in list_pretrained():
        pytest.skip("no residual_net MNIST checkpoint")
    model, meta = load_pretrained("residual_net", "mnist", device="cpu")
    live = prepare_canvas(encode_canvas(render(strokes, SIDE)), "mnist")
    uploaded = upload_path_image(render(strokes, 4 * SIDE), tmp_path, name)
    assert np.abs(live.image.astype(int) - uploaded).mean() < 10
    with torch.no_grad():
        a = model(live.tensor).argmax(1).item()
        b = model(torch.from_numpy(uploaded / 255.0).float()[None, None]).argmax(1).item()
    assert a == b and str(meta["classes"][a]).startswith(digit)


def test_base64_length_is_checked_before_decoding(monkeypatch):
    """A header that promises a small crop cannot smuggle a long string into b64decode."""
    called = []
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: called.append(1))
    with pytest.raises(ValueError):
        decode_canvas(_payload(alpha="A" * 40_000))
    assert not called
