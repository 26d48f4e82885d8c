"""Input components that refuse, at the edge, what the app will not fetch or decode.

* :class:`ImageFile` (uploads and the API's ``image``) passes the file's path on untouched, so
  :mod:`cnndemo.data.decode` opens it with its own limits and messages.
* Every component here refuses a ``FileData`` whose path is an http(s) URL *before* Gradio
  downloads it (Gradio would fetch it with no size cap): visitors upload files, the server fetches nothing.
* :class:`BoundedSketchpad` checks a canvas payload (number of layers, each part's size from its
  file header) before Gradio decodes it into full-size arrays.

Each problem is a ``gr.Error`` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import ImageData
from gradio_client import utils as client_utils

from cnndemo.data.decode import InputError, check_canvas

URL_REFUSED = "Links (URLs) are not accepted: upload the image file itself."
NOT_A_FILE = ("The image must be an uploaded file (a FileData such as gradio_client's handle_file() sends), "
              "not {}.")


def refuse_url(path: str | Path | None) -> None:
    """``gr.Error`` when ``path`` is an http(s) URL."""
    if isinstance(path, str) and client_utils.is_http_url_like(path):
        raise gr.Error(URL_REFUSED)


class GradioFrontend:
    """Mixin for a subclass of a Gradio component: it renders as ``FRONTEND``, the Gradio front-end component of
    its parent (a subclass has none of its own; Gradio would look for one named after the subclass)."""

    FRONTEND = ""

    def get_block_name(self) -> str:
        return self.FRONTEND

    def get_block_class(self) -> str:
        return self.FRONTEND


class NoRemoteFiles(GradioFrontend):
    """Mixin for a component: files are never downloaded from URLs a client names."""

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        refuse_url(url_or_file_path)
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def move_resource_to_block_cache(self, url_or_file_path):
        refuse_url(url_or_file_path)
        return super().move_resource_to_block_cache(url_or_file_path)


class UploadedImageData(ImageData):
    """Gradio's ``ImageData``, refusing anything but a file object with a one-line message (not pydantic's)."""

    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        if not isinstance(obj, (dict, ImageData)):
            raise gr.Error(NOT_A_FILE.format(f"{type(obj).__name__} {str(obj)[:40]!r}"))
        return super().model_validate(obj, *args, **kwargs)


class ImageFile(NoRemoteFiles, gr.Image):
    """A ``gr.Image`` that passes the uploaded file's path on untouched.

    ``gr.Image`` would open and convert the file itself (dropping alpha, 16-bit depth and CMYK,
    and failing with a generic error on unreadable files); :mod:`cnndemo.data.decode` does all of
    that with clear messages instead.
    """

    FRONTEND = "image"
    data_model = UploadedImageData

    def preprocess(self, payload):
        if payload is not None and getattr(payload, "path", None):
            refuse_url(str(payload.path))
            return str(payload.path)
        return super().preprocess(payload)


def _path(part) -> str | None:
    return None if part is None else str(part.path)


class BoundedSketchpad(NoRemoteFiles, gr.Sketchpad):
    """A ``gr.Sketchpad`` whose payload is checked (one layer, every part's size) before it is decoded."""

    FRONTEND = "imageeditor"  # like gr.Sketchpad

    def preprocess(self, payload):
        if payload is not None:
            layers = list(getattr(payload, "layers", None) or [])
            value = {"background": _path(payload.background), "composite": _path(payload.composite),
                     "layers": [_path(layer) for layer in layers]}
            try:
                check_canvas(value)
            except InputError as exc:
                raise gr.Error(str(exc)) from None
        return super().preprocess(payload)
