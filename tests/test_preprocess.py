"""Preprocessing on the hard cases: where drawing demos usually fail."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnndemo.data.decode import MAX_UPLOAD_BYTES, InputError

from cnndemo.data.framing import prepare, stroke_width

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(dataset: str, prefix: str) -> np.ndarray:
    """A committed test-set image (28 x 28 uint8, white on black)."""
    path = sorted((EXAMPLES / dataset).glob(f"{prefix}_*.png"))[0]
    return np.asarray(Image.open(path))


def seven(size=(400, 400), width=24, offset=(0, 0), scale=1.0, ink=0, paper=255) -> Image.Image:
    """A hand-drawn-like '7' (dark on light by default) as a PIL 'L' image."""
    im = Image.new("L", size, paper)
    d = ImageDraw.Draw(im)
    ox, oy = offset
    pts = [(100, 80), (300, 80), (170, 330)]
    pts = [(ox + x * scale, oy + y * scale) for x, y in pts]
    d.line(pts, fill=ink, width=max(1, int(width)), joint="curve")
    return im


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return float((a * ys).sum() / a.sum()), float((a * xs).sum() / a.sum())


def bbox_side(a: np.ndarray, t: float = 0.05) -> int:
    rows, cols = np.flatnonzero((a > t).any(1)), np.flatnonzero((a > t).any(0))
    return max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)


def out(source, dataset="mnist") -> np.ndarray:
    return prepare(source, dataset).tensor[0, 0].numpy()


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def mnist_stroke_range() -> tuple[float, float]:
    """Min and max stroke width of the committed MNIST examples, by the same measure."""
    widths = [stroke_width(np.asarray(Image.open(p), np.float32) / 255) for p in sorted((EXAMPLES / "mnist").glob("*.png"))]
    return min(widths), max(widths)


def test_output_shape_range_and_framing():
    a = out(seven())
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1 and a.max() > 0.9
    assert bbox_side(a) == 20  # fits the 20 x 20 box, aspect kept
    cy, cx = center_of_mass(a)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75  # MNIST: centre of mass at the centre


def test_mnist_test_images_pass_through_almost_unchanged():
    diffs = []
    for p in sorted((EXAMPLES / "mnist").glob("*.png")):
        orig = np.asarray(Image.open(p), np.float32) / 255
        diffs.append(np.abs(out(str(p)) - orig).mean())
    assert np.median(diffs) < 0.02 and max(diffs) < 0.12


def test_off_centre_small_digit_is_found_scaled_and_centred():
    digit = example("mnist", "3")
    canvas = np.full((400, 400), 255, np.uint8)  # white paper
    small = np.asarray(Image.fromarray(255 - digit).resize((40, 40), Image.Resampling.BILINEAR))
    canvas[330:370, 20:60] = small  # bottom-left corner, a tenth of the canvas
    a = out(Image.fromarray(canvas))
    assert bbox_side(a) == 20
    cy, cx = center_of_mass(a)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75
    assert corr(a, digit / 255.0) > 0.8  # the same digit as the original test image


@pytest.mark.parametrize("width", [2, 8, 24, 70])
def test_thin_and_thick_strokes_end_up_mnist_like(width):
    lo, hi = mnist_stroke_range()
    a = out(seven(width=width))
    w = stroke_width(a)
    assert 0.8 * lo <= w <= 1.2 * hi, f"stroke width {w:.2f} outside MNIST's {lo:.2f}..{hi:.2f}"
    reference = out(seven(width=24))
    assert corr(a, reference) > (0.7 if width < 70 else 0.5)  # a fat brush also fattens the corner


def test_dark_on_light_equals_light_on_dark():
    dark = out(seven(ink=0, paper=255))
    light = out(seven(ink=255, paper=0))
    assert np.abs(dark - light).max() < 0.02


def test_grey_paper_and_grey_ink():
    a = out(seven(ink=90, paper=200))
    assert np.abs(a - out(seven())).mean() < 0.03


def test_alpha_only_ink_like_the_canvas():
    ref = out(seven())
    alpha = 255 - np.asarray(seven())
    black_ink = np.zeros((400, 400, 4), np.uint8)
    black_ink[..., 3] = alpha  # RGB 0 everywhere, the drawing only in alpha (what gr.Sketchpad sends)
    white_ink = black_ink.copy()
    white_ink[..., :3] = 255  # white ink on transparent
    for rgba in (black_ink, white_ink):
        canvas = {"background": None, "layers": [rgba], "composite": rgba}
        assert np.abs(out(canvas) - ref).mean() < 0.02
    assert np.abs(out({"background": None, "layers": [black_ink], "composite": None}) - ref).mean() < 0.02


@pytest.mark.parametrize("source", [
    {"background": None, "layers": [], "composite": None},
    {"background": None, "layers": [], "composite": np.zeros((300, 300, 4), np.uint8)},
    np.full((300, 300, 3), 255, np.uint8),
    np.full((300, 300), 128, np.uint8),
    np.zeros((300, 300), np.uint8),
    None,
], ids=["empty-canvas", "transparent-canvas", "white", "grey", "black", "none"])
def test_blank_inputs_raise_a_clear_message(source):
    with pytest.raises(InputError) as err:
        prepare(source, "mnist")
    assert any(word in str(err.value).lower() for word in ("blank", "draw", "no image"))


def test_big_phone_photo(tmp_path):
    """4000 x 3000 JPEG: uneven light, paper grain, a dark digit off-centre; fast and correctly framed."""
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    light = np.linspace(215, 245, w)[None, :] - np.linspace(0, 20, h)[:, None]
    photo = light + rng.normal(0, 4, (h, w))
    stroke = np.asarray(seven(size=(w, h), width=60, offset=(2300, 1500), scale=3.0), np.float32) < 128
    photo[stroke] = 45
    rgb = np.stack([photo, photo * 0.98, photo * 0.93], -1).clip(0, 255).astype(np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    t0 = time.perf_counter()
    a = out(str(path))
    seconds = time.perf_counter() - t0
    assert seconds < 2.0, f"{seconds:.2f} s for a 12-megapixel photo"
    assert bbox_side(a) == 20
    cy, cx = center_of_mass(a)
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75
    assert corr(a, out(seven())) > 0.75


def test_exif_rotated_photo(tmp_path):
    upright = seven(size=(300, 400))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    stored.convert("RGB").save(path, exif=exif.tobytes(), quality=95)
    assert np.abs(out(str(path)) - out(upright)).mean() < 0.03


def _modes(ref: Image.Image, tmp_path: Path) -> dict[str, Path]:
    """The same dark-on-light drawing saved in many modes and formats."""
    files = {}
    arr = np.asarray(ref)
    rgba = np.zeros((*arr.shape, 4), np.uint8)
    rgba[..., 3] = 255 - arr
    variants = {
        "palette.png": ref.convert("RGB").convert("P"),
        "palette-transparent.png": _transparent_palette(arr),
        "gray16.png": Image.fromarray(arr.astype(np.uint16) * 257),
        "cmyk.jpg": ref.convert("RGB").convert("CMYK"),
        "cmyk.tif": ref.convert("RGB").convert("CMYK"),
        "la.png": Image.fromarray(np.stack([arr, np.full_like(arr, 255)], -1), "LA"),
        "rgba-alpha-ink.png": Image.fromarray(rgba, "RGBA"),
        "bilevel.png": ref.point(lambda v: 255 if v > 128 else 0).convert("1"),
        "webp.webp": ref.convert("RGB"),
        "bmp.bmp": ref.convert("RGB"),
    }
    for name, im in variants.items():
        path = tmp_path / name
        im.save(path)
        files[name] = path
    return files


def _transparent_palette(arr: np.ndarray) -> Image.Image:
    """A 2-colour palette image: transparent paper (index 0), black ink (index 1)."""
    im = Image.fromarray((arr < 128).astype(np.uint8), "P")
    im.putpalette([255, 255, 255, 0, 0, 0])
    im.info["transparency"] = 0
    return im


def test_any_mode_and_format(tmp_path):
    ref = seven()
    expected = out(ref)
    for name, path in _modes(ref, tmp_path).items():
        got = out(str(path))
        assert np.abs(got - expected).mean() < 0.04, name


def test_bytes_and_pil_and_array_inputs():
    ref = seven()
    buf = io.BytesIO()
    ref.save(buf, format="PNG")
    expected = out(ref)
    assert np.abs(out(buf.getvalue()) - expected).max() < 1e-6
    assert np.abs(out(np.asarray(ref)) - expected).max() < 1e-6
    assert np.abs(out(np.asarray(ref, np.float32) / 255) - expected).mean() < 0.01


def test_bad_files_raise_clear_messages(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    truncated = tmp_path / "truncated.png"
    buf = io.BytesIO()
    seven().save(buf, format="PNG")
    truncated.write_bytes(buf.getvalue()[:200])
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MAX_UPLOAD_BYTES + 1))
    cases = {empty: "empty", text: "not an image", truncated: "not an image", big: "limit",
             tmp_path / "missing.png": "could not be found"}
    for path, words in cases.items():
        with pytest.raises(InputError) as err:
            prepare(str(path), "mnist")
        assert words in str(err.value), (path.name, str(err.value))


def test_too_many_pixels(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (8000, 7000), 255).save(path)  # 56 megapixels, a small file
    with pytest.raises(InputError, match="too large"):
        prepare(str(path), "mnist")
    with pytest.raises(InputError, match="too large"):
        prepare(np.zeros((8000, 7000), np.uint8), "mnist")


def test_unknown_dataset():
    with pytest.raises(InputError, match="dataset"):
        prepare(seven(), "cifar10")


def test_fashion_test_images_pass_through_almost_unchanged():
    diffs = []
    for p in sorted((EXAMPLES / "fashion_mnist").glob("*.png")):
        orig = np.asarray(Image.open(p), np.float32) / 255
        diffs.append(np.abs(out(str(p), "fashion_mnist") - orig).mean())
    assert np.median(diffs) < 0.02 and max(diffs) < 0.2  # a 27-pixel coat is rescaled to 28: texture moves


def test_fashion_product_photo_fills_the_frame():
    """Dark trousers on a white studio background: inverted, longest side 28, centred."""
    im = Image.new("RGB", (600, 900), (250, 250, 250))
    d = ImageDraw.Draw(im)
    d.polygon([(200, 100), (400, 100), (420, 800), (320, 800), (300, 300), (280, 800), (180, 800)], fill=(40, 40, 60))
    a = out(im, "fashion_mnist")
    rows, cols = np.flatnonzero((a > 0.05).any(1)), np.flatnonzero((a > 0.05).any(0))
    assert rows[-1] - rows[0] + 1 == 28  # the long side fills the frame, as in Fashion-MNIST
    assert abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1
    assert a.max() > 0.9 and a[0, 0] == 0  # light object on black


def test_nothing_breaks_for_the_next_request():
    with pytest.raises(InputError):
        prepare(np.full((50, 50), 255, np.uint8), "mnist")
    assert bbox_side(out(seven())) == 20
