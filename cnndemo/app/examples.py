"""The example shelves under the input panel: real test images, shown and loaded without any server path.

Each dataset's shelf is a ``gr.Dataset`` of small HTML thumbnails whose pictures are ``data:`` URIs of the committed
PNGs (28 x 28, about 300 bytes each), so ``/config`` carries the pictures but no file name of the server. The shelf
is ``type="index"``: a click sends only (this shelf's dataset, the example's index); the server copies that example
into Gradio's cache and answers it as the upload box's new value, whose change event analyses it as before.

The only path a visitor then sees is that copy's, in Gradio's cache (``/gradio_api/file=<gradio cache>/<hash>/
<name>.png``): Gradio's own file serving, as for every picture the app draws. Nothing of the repository is served
in place any more (no ``gr.set_static_paths``).
"""

from __future__ import annotations

import base64
import functools
import html
import math
from pathlib import Path
from typing import Any

import gradio as gr
from gradio import processing_utils

from cnndemo import catalog

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
PER_PAGE = 10
# The look of Gradio's image examples (80 x 80, filling the card), pixelated. Gradio's HTML example pads its card
# (var(--size-2)) and zeroes its last child's bottom margin, so a box taken out of the padding holds the picture.
BOX_STYLE = ("margin: calc(-1 * var(--size-2)) calc(-1 * var(--size-2)) 0; "
             "height: calc(var(--size-20) - var(--size-2)); overflow: visible;")
THUMB_STYLE = ("display: block; width: var(--size-20); height: var(--size-20); max-width: none; margin: 0; "
               "image-rendering: pixelated; image-rendering: crisp-edges; border-radius: var(--radius-sm);")


def example_files(dataset: str, per_class: int = 3) -> list[str]:
    """Paths of the committed example PNGs of ``dataset``, ``per_class`` per class, round-robin over
    the classes (so each page of ten examples shows every class once)."""
    files = sorted((EXAMPLES / dataset).glob("*.png"))
    by_class: dict[str, list[str]] = {}
    for f in files:
        by_class.setdefault(f.name.split("_", 1)[0], []).append(str(f))
    classes = sorted(by_class, key=int)
    return [by_class[c][k] for k in range(per_class) for c in classes if k < len(by_class[c])]


@functools.cache
def shelf_files(dataset: str) -> tuple[str, ...]:
    """The examples of ``dataset``'s shelf, in shelf order (read once per process)."""
    return tuple(example_files(dataset))


def class_name(dataset: str, path: str | Path) -> str:
    """The class of an example file, from its name (``3_3_0018.png``, ``0_t-shirt-top_0019.png``)."""
    return catalog.dataset(dataset).classes[int(Path(path).name.split("_", 1)[0])]


def thumbnail(dataset: str, path: str | Path) -> str:
    """An ``<img>`` of the example with its bytes inline, labelled with its class."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    label = html.escape(f"Example: {class_name(dataset, path)}", quote=True)
    return (f'<div style="{BOX_STYLE}"><img src="data:image/png;base64,{data}" alt="{label}" title="{label}" '
            f'style="{THUMB_STYLE}"></div>')


def bad_index(dataset: str, index: Any) -> str | None:
    """Why ``index`` is not an example of ``dataset``'s shelf (one line), or None."""
    count = len(shelf_files(dataset))
    if isinstance(index, bool) or not isinstance(index, (int, float)) or (isinstance(index, float) and (
            not math.isfinite(index) or not index.is_integer())) or not 0 <= index < count:
        shown = (repr(index)[:24] if isinstance(index, (int, float)) and not isinstance(index, bool) else "nothing"
                 if index is None else f"a {type(index).__name__}")  # a client's text is not echoed
        return f"The example index must be a whole number from 0 to {count - 1}, not {shown}."
    return None


def example_copy(dataset: str, index: Any, cache_dir: str) -> str:
    """The path, in Gradio's cache folder ``cache_dir``, of a copy of example ``index`` of ``dataset``'s shelf
    (written once, named by its content's hash as Gradio names every cached file); ``gr.Error`` for a bad index."""
    problem = bad_index(dataset, index)
    if problem:
        raise gr.Error(problem)
    return processing_utils.save_file_to_cache(shelf_files(dataset)[int(index)], cache_dir)


def _loader(dataset: str, cache_dir: str):
    def load_example(index):
        return example_copy(dataset, index, cache_dir)

    return load_example


def build_shelves(upload: Any, shown: str) -> dict[str, gr.Dataset]:
    """One shelf per dataset (``shown``'s visible, the others hidden until the dataset is switched), each of whose
    clicks makes its example the upload box's value. Dataset name -> its ``gr.Dataset``."""
    shelves: dict[str, gr.Dataset] = {}
    for ds in catalog.DATASETS.values():
        files = shelf_files(ds.name)
        if not files:
            continue
        shelf = gr.Dataset(components=["html"], samples=[[thumbnail(ds.name, f)] for f in files], type="index",
                           label=ds.title, samples_per_page=PER_PAGE, visible=ds.name == shown)
        shelf.click(_loader(ds.name, upload.GRADIO_CACHE), [shelf], upload, queue=False, show_progress="hidden",
                    api_visibility="private")
        shelves[ds.name] = shelf
    return shelves
