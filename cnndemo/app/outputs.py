"""The app's ``gr.Blocks``, whose skipped outputs cost nothing: a canvas update is cheap whichever tab is visible.

A canvas update is one event whose outputs are every network tab's views; the hidden tabs' are skipped
(``gr.skip()``), so they compute nothing. But Gradio 6.31 handles a skipped output like a property update: for
each one it builds a new instance of the component, that instance's config (an ``inspect.signature`` per config)
and its API schema (pydantic, afresh per instance), only to send the page ``{"__type__": "update"}``: "leave it
as it is". With 10-13 skipped outputs that was most of Gradio's work per update (in-process, Gradio's own
``postprocess_data``; see BENCHMARKS.md).

:class:`SkippingBlocks` answers a skipped output directly, with what Gradio itself would send, and hands Gradio
only the outputs that change. (The views' updates send values, not properties, for the same reason: a property
update costs Gradio a new component.)

:class:`Picture` is the ``gr.Image`` of every picture the app draws: each picture is written to Gradio's cache once,
atomically, so a browser never reads a half-written file; and :class:`SkippingBlocks` sends an event's pictures itself,
in one worker thread, skipping Gradio's move of a file that is already in its cache (checked against
``gr.Blocks.postprocess_data``, value for value, in tests/test_updates.py).
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from gradio import processing_utils
from gradio.blocks import convert_component_dict_to_list
from gradio.route_utils import API_PREFIX
from gradio_client.utils import encode_file_path
from PIL import Image

from cnndemo.app.inputs import GradioFrontend

SKIPPED: dict[str, str] = gr.skip()  # ``{"__type__": "update"}``: also what Gradio sends the page for it


class SkippingBlocks(gr.Blocks):
    """``gr.Blocks`` whose skipped outputs cost nothing: each is answered as Gradio would answer it, without building
    the component again; pictures (:class:`Picture`) are sent by :meth:`Picture.sent`; Gradio postprocesses the
    rest. Anything unusual (one output, batches, validators, a return value Gradio will refuse) goes to Gradio
    unchanged, errors and all."""

    async def postprocess_data(self, block_fn, predictions, state) -> list[Any]:
        outputs = block_fn.outputs
        if len(outputs) < 2 or block_fn.batch or block_fn.is_validator_function:
            return await super().postprocess_data(block_fn, predictions, state)
        if isinstance(predictions, dict) and predictions == SKIPPED:  # one skip() for every output
            predictions = [SKIPPED] * len(outputs)
        elif isinstance(predictions, dict) and predictions:  # {component: value}
            predictions = convert_component_dict_to_list(list(outputs), predictions)
        if not isinstance(predictions, (list, tuple)) or len(predictions) != len(outputs):
            return await super().postprocess_data(block_fn, predictions, state)
        changed = [i for i, (block, value) in enumerate(zip(outputs, predictions))
                   if block.stateful or not (isinstance(value, dict) and value == SKIPPED)]
        pictures = [i for i in changed if block_fn.postprocess and Picture.sends(outputs[i], predictions[i])]
        rest = [i for i in changed if i not in pictures]
        if len(rest) == len(outputs):
            return await super().postprocess_data(block_fn, predictions, state)
        answer: list[Any] = [dict(SKIPPED) for _ in outputs]
        if pictures:  # in one worker thread, as Gradio postprocesses (each output in a thread of its own)
            blocks = [state[outputs[i]._id] if outputs[i]._id in state else outputs[i] for i in pictures]
            sent = await anyio.to_thread.run_sync(
                lambda: [block.sent(predictions[i]) for block, i in zip(blocks, pictures)], limiter=self.limiter)
            for block, i, data in zip(blocks, pictures, sent):
                if block._id not in state:
                    state[block._id] = block
                state._update_value_in_config(block._id, {**data, "meta": dict(data["meta"])})
                answer[i] = data
        if rest:
            some = copy.copy(block_fn)  # the same event with the other changed outputs only
            some.outputs = [outputs[i] for i in rest]
            values = [predictions[i] for i in rest]
            done = await super().postprocess_data(some, values if len(rest) > 1 else values[0], state)
            for i, value in zip(rest, done):
                answer[i] = value
        return answer


class Picture(GradioFrontend, gr.Image):
    """An output ``gr.Image`` (PIL pictures) that writes each picture to Gradio's cache once, atomically.

    Gradio 6.31 names a picture's cache file by the hash of its bytes but writes it again, in place, every time the
    picture is sent (``processing_utils.save_pil_to_cache``). When two events send the same picture (the filters
    when a tab is selected and when their accordion opens; an unchanged feature map on the next pen move) the file
    is truncated while the browser is still reading it: the server logs "Too little data for declared
    Content-Length" and the page keeps a broken image (the labs browser test, about one run in three). Here the
    file is written under a temporary name and renamed into place, and not written at all when it exists (which
    also saves the write)."""

    FRONTEND = "image"

    def postprocess(self, value):
        if isinstance(value, Image.Image):
            value = write_once(value, self.GRADIO_CACHE, self.format or "png")
        return super().postprocess(value)

    @staticmethod
    def sends(block, value) -> bool:
        """Whether ``value`` for output ``block`` is a picture that :meth:`sent` answers as Gradio would."""
        return (isinstance(block, Picture) and isinstance(value, Image.Image) and not block.proxy_url
                and getattr(block.watermark, "watermark", None) is None)

    def sent(self, picture: Image.Image) -> dict[str, Any]:
        """What Gradio sends the page for ``picture``: the file in Gradio's cache and the URL the page loads it from.

        Gradio gets there by postprocessing, then moving the result's file "to the cache" twice (once for the
        session's copy of the value, once for the answer), each time checking the path against the cache, the
        static and the allowed folders (~1 ms per picture, 6 pictures per GoogLeNet update). The file is
        already in the cache, so the move leaves it where it is and only adds the URL; this adds it directly."""
        data = self.postprocess(picture).model_dump()
        self.temp_files.add(data["path"])  # as Gradio's move does
        data["url"] = f"{API_PREFIX}/file={encode_file_path(data['path'])}"
        return data


def write_once(picture: Image.Image, cache_dir: str, fmt: str) -> str:
    """The path of ``picture`` encoded as ``fmt`` in Gradio's cache, where Gradio would put it (a folder named by
    the hash of the bytes), written only if it is not there yet, and then atomically."""
    data = processing_utils.encode_pil_to_bytes(picture, fmt)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    path = (folder / f"image.{fmt}").resolve()
    try:
        os.utime(path)  # there already: touched, as Gradio does, since its cache cleaner deletes files by age
        return str(path)
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=folder, prefix=".image.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(staging, path)
    return str(path)
