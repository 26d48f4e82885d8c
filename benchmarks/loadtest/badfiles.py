"""Bad (and awkward but valid) image files for the fault test, written into a folder on demand.

Each maker takes the output folder and returns the file's path. Nothing here needs the app; the
files are small except ``oversize`` (just over the 10 MB upload limit) and are made from the
committed examples or from scratch with PIL and a few hand-built PNG chunks.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from benchmarks.loadtest.app_control import EXAMPLES

DIGIT = EXAMPLES / "mnist" / "7_7_0000.png"  # a real test image, a 7


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, bit_depth: int = 1, color_type: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _digit(size: int = 112) -> Image.Image:
    return Image.open(DIGIT).convert("L").resize((size, size))


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def empty(folder: Path) -> Path:
    return _write(folder, "empty.png", b"")


def truncated_png(folder: Path) -> Path:
    buf = io.BytesIO()
    _digit(200).save(buf, "PNG")
    return _write(folder, "truncated.png", buf.getvalue()[: len(buf.getvalue()) // 2])


def text_as_png(folder: Path) -> Path:
    return _write(folder, "notes.png", b"these are my lecture notes, not a picture\n" * 20)


def bomb_png(folder: Path) -> Path:
    """A 20000 x 20000 1-bit PNG of ~50 KB: 400 megapixels once decoded (decompression bomb)."""
    row = b"\x00" + b"\x00" * (20000 // 8)
    idat = zlib.compress(row * 20000, 9)
    return _write(folder, "bomb.png", _png(20000, 20000, idat))


def bomb_gif(folder: Path) -> Path:
    """A GIF whose header claims 65535 x 65535 (4.3 gigapixels), 1 KB on disk."""
    buf = io.BytesIO()
    Image.new("P", (8, 8), 0).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return _write(folder, "bomb.gif", bytes(data))


def zero_size_png(folder: Path) -> Path:
    return _write(folder, "zero.png", _png(0, 0, zlib.compress(b"")))


def one_by_one(folder: Path) -> Path:
    path = folder / "one.png"
    Image.new("L", (1, 1), 255).save(path)
    return path


def bad_crc_png(folder: Path) -> Path:
    buf = io.BytesIO()
    _digit().save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[29] ^= 0xFF  # inside the IHDR CRC
    return _write(folder, "badcrc.png", bytes(data))


def truncated_jpeg(folder: Path) -> Path:
    buf = io.BytesIO()
    _digit(400).convert("RGB").save(buf, "JPEG", quality=95)
    return _write(folder, "truncated.jpg", buf.getvalue()[: len(buf.getvalue()) // 3])


def eps(folder: Path) -> Path:
    text = ("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n%%EndComments\n"
            "newpath 4 4 moveto 24 24 lineto 4 setlinewidth stroke\nshowpage\n%%EOF\n")
    return _write(folder, "drawing.eps", text.encode())


def pdf(folder: Path) -> Path:
    buf = io.BytesIO()
    _digit().save(buf, "PDF")  # PIL writes PDFs but cannot read them
    return _write(folder, "digit.pdf", buf.getvalue())


def svg(folder: Path) -> Path:
    text = ('<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
            '<line x1="4" y1="4" x2="24" y2="24" stroke="black" stroke-width="4"/></svg>')
    return _write(folder, "digit.svg", text.encode())


def sixteen_bit(folder: Path) -> Path:
    """A valid 16-bit grayscale PNG of the 7 (README: 16-bit images are supported)."""
    path = folder / "digit16.png"
    im = _digit()
    Image.frombytes("I;16", im.size, bytes(b for v in im.tobytes() for b in (v, v))).save(path)
    return path


def animated_gif(folder: Path) -> Path:
    """A valid 3-frame GIF whose first frame is the 7."""
    path = folder / "anim.gif"
    first = _digit()
    others = [Image.new("L", first.size, v) for v in (0, 128)]
    first.save(path, save_all=True, append_images=others, duration=100, loop=0)
    return path


def corrupt_exif(folder: Path) -> Path:
    """A JPEG of the 7 with a garbage EXIF (APP1) segment whose orientation tag points nowhere."""
    buf = io.BytesIO()
    _digit().convert("RGB").save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x05" + b"\x01\x12\x00\x03\xff\xff\xff\xff\x00\x06\x00\x00" * 5
    app1 = b"Exif\x00\x00" + tiff + b"\xde\xad\xbe\xef" * 4
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return _write(folder, "exif.jpg", data[:2] + segment + data[2:])


def jpeg_named_png(folder: Path) -> Path:
    """A valid JPEG of the 7 with a .png name (the content decides)."""
    buf = io.BytesIO()
    _digit().convert("RGB").save(buf, "JPEG", quality=95)
    return _write(folder, "really_a_jpeg.png", buf.getvalue())


def cmyk_jpeg(folder: Path) -> Path:
    path = folder / "cmyk.jpg"
    _digit().convert("CMYK").save(path, "JPEG", quality=95)
    return path


def oversize(folder: Path) -> Path:
    """A real PNG padded with trailing bytes to 11 MB: over the 10 MB upload limit."""
    data = DIGIT.read_bytes()
    return _write(folder, "huge.png", data + b"\x00" * (11 * 2**20 - len(data)))


MAKERS: dict[str, Callable[[Path], Path]] = {f.__name__: f for f in (
    empty, truncated_png, text_as_png, bomb_png, bomb_gif, zero_size_png, one_by_one, bad_crc_png, truncated_jpeg,
    eps, pdf, svg, sixteen_bit, animated_gif, corrupt_exif, jpeg_named_png, cmyk_jpeg, oversize)}


def make(name: str, folder: Path) -> Path:
    """Write the file ``name`` (a key of :data:`MAKERS`) into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    return MAKERS[name](folder)
