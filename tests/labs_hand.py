"""A consistent "hand" the models never saw, for the teach lab's tests and benchmark: outlined (hollow) digits.

Digits are rendered with a system TrueType font (DejaVu Sans Bold, or Liberation Sans Bold) as outlines
only, with a little random jitter in size, position and rotation, black on white like a scanned drawing.
The pretrained MNIST models read most of them as 0 or 8; a person sees the digit at once.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf")


def font_path() -> str | None:
    """The first of ``FONTS`` that exists (None: no usable font on this system)."""
    return next((f for f in FONTS if Path(f).is_file()), None)


def hollow_digit(digit: int, rng: random.Random, font: str, size: int = 96) -> Image.Image:
    """One outlined digit, jittered: font size 56..66 px, shifted up to 4 px, rotated up to 8 degrees."""
    im = Image.new("L", (size, size), 255)
    f = ImageFont.truetype(font, rng.randint(56, 66))
    ImageDraw.Draw(im).text((size / 2 + rng.uniform(-4, 4), size / 2 + rng.uniform(-4, 4)), str(digit), font=f,
                            anchor="mm", fill=255, stroke_width=3, stroke_fill=0)
    return im.rotate(rng.uniform(-8, 8), fillcolor=255, resample=Image.BILINEAR)


def hollow_hand(per_digit: int, seed: int = 0) -> tuple[list[Image.Image], list[str]]:
    """``per_digit`` drawings of each digit 0..9 and their labels ("0" .. "9")."""
    font = font_path()
    if font is None:
        raise FileNotFoundError(f"none of {FONTS} is installed")
    rng = random.Random(seed)
    images = [hollow_digit(d, rng, font) for d in range(10) for _ in range(per_digit)]
    return images, [str(d) for d in range(10) for _ in range(per_digit)]


def write_hand(folder: Path, per_digit: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Save :func:`hollow_hand` as PNG files in ``folder``; (paths, labels)."""
    images, labels = hollow_hand(per_digit, seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (im, label) in enumerate(zip(images, labels)):
        path = folder / f"{label}_{i:03d}.png"
        im.save(path)
        paths.append(str(path))
    return paths, labels
