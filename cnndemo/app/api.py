"""The named HTTP endpoints over the pretrained models: ``/classify``, ``/feature_maps``, ``/inception_branches``,
``/residual_blocks``. Each is a plain function over :mod:`cnndemo.app.views`; input and name problems become
``gr.Error`` with the view's message (never a stack trace).

Their inputs and outputs are API-only components (:func:`api_only`): built on the app's endpoint page
(:data:`API_PAGE`, never shown, see :mod:`cnndemo.app.layout`), so the page a visitor opens neither lists nor loads them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app import views
from cnndemo.app.inputs import ImageFile  # noqa: F401 - re-exported: the app's file input lives in inputs.py
from cnndemo.app.setting_inputs import Choice, SettingText
from cnndemo.app.zoo import ModelZoo
from cnndemo.data.decode import InputError

LOG = logging.getLogger("cnndemo")
FAILED = "Something went wrong on the server ({}); it has been logged. Please try again or try another image."


def api_errors(fn):
    """Turn input, name and model problems into gr.Error (a clean message for API clients and the UI);
    anything else is logged with its traceback on the server and shown as one line."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (InputError, LookupError, ValueError) as exc:
            raise gr.Error(str(exc).strip("'\"")) from None
        except Exception as exc:  # noqa: BLE001 - the visitor gets one line, the log gets the traceback
            LOG.exception("%s failed", getattr(fn, "__name__", "handler"))
            raise gr.Error(FAILED.format(type(exc).__name__)) from None

    return wrapped


def endpoints(zoo: ModelZoo) -> dict[str, Any]:
    """The endpoint functions by API name."""

    @api_errors
    def classify(image: str, arch: str, dataset: str) -> dict[str, float]:
        """Top-5 classes of the image for the pretrained ``arch`` on ``dataset``."""
        return views.predict(zoo, image, arch, dataset).top

    @api_errors
    def feature_maps(image: str, arch: str, dataset: str, layer: str) -> tuple[Any, dict]:
        """Channel grid (PNG) of ``layer`` and its per-channel max activations, strongest first."""
        grid, _caption, fm = views.feature_view(zoo, image, arch, dataset, layer or None)
        maxes = fm.channel_max
        return grid, {
            "layer": fm.layer.name, "kind": fm.layer.kind, "shape": list(fm.maps.shape),
            "channels": [{"index": i, "max": round(float(maxes[i]), 5)} for i in fm.strongest()],
        }

    @api_errors
    def inception_branches(image: str, arch: str, dataset: str, module: str) -> tuple[list, dict]:
        """The four branch grids (PNG) of an Inception module, with channel counts and energy shares."""
        grids, _table, view = views.branches_view(zoo, image, arch, dataset, module or None)
        return [(g, b.label) for g, b in zip(grids, view.branches)], {
            "module": view.module, "out_channels": view.out_channels,
            "branches": [{"name": b.name, "label": b.label, "channels": b.channels,
                          "energy_share": round(b.energy_share, 5)} for b in view.branches],
        }

    @api_errors
    def residual_blocks(image: str, arch: str, dataset: str) -> tuple[Any, dict]:
        """x | F(x) | out per residual block (PNG) and ‖F(x)‖/‖x‖ per block."""
        fig, _table, blocks = views.residual_view(zoo, image, arch, dataset)
        return fig, {"blocks": [{"name": b.name, "x_shape": list(b.x.shape), "out_shape": list(b.out.shape),
                                 "ratio": round(b.ratio, 5)} for b in blocks]}

    return {"classify": classify, "feature_maps": feature_maps, "inception_branches": inception_branches,
            "residual_blocks": residual_blocks}


API_PAGE = "endpoints"  # the path of the page that holds the API-only components (a blank page if opened)


def api_only(component_class, *args, **kwargs):
    """``component_class(*args, **kwargs)`` (a class or a factory) as a component that exists for the API alone: hidden, so a browser never loads its code (Gradio loads a
    component's code when it is visible). Build these inside ``demo.route(..., API_PAGE)``."""
    return component_class(*args, visible=False, **kwargs)


def published(name: str, api: bool) -> dict[str, str]:
    """Event keyword arguments for a function served twice: the named endpoint ``name`` on the endpoint page
    (``api``), or a private event in a tab built when opened (same function, no name)."""
    return {"api_name": name} if api else {"api_visibility": "private"}


def build_api(zoo: ModelZoo) -> None:
    """API-only components and the named endpoints (call inside the app's endpoint page)."""
    fns = endpoints(zoo)
    image = api_only(ImageFile, type="filepath", label="image")
    arch = api_only(Choice, list(catalog.ARCHITECTURES), value=next(iter(catalog.ARCHITECTURES)), label="arch")
    dataset = api_only(Choice, list(catalog.DATASETS), value=views.DEFAULT_DATASET, label="dataset")
    layer = api_only(SettingText, label="layer")
    module = api_only(SettingText, label="module")
    label = api_only(gr.Label, num_top_classes=10, label="prediction")
    grid = api_only(gr.Image, format="png", type="pil", label="feature maps")
    info = api_only(gr.JSON, label="info")
    gallery = api_only(gr.Gallery, format="png", type="pil", label="branches")
    res_fig = api_only(gr.Image, format="png", type="pil", label="residual blocks")
    buttons = {name: api_only(gr.Button) for name in fns}
    wiring = {
        "classify": ([image, arch, dataset], label),
        "feature_maps": ([image, arch, dataset, layer], [grid, info]),
        "inception_branches": ([image, arch, dataset, module], [gallery, info]),
        "residual_blocks": ([image, arch, dataset], [res_fig, info]),
    }
    for name, (inputs, outputs) in wiring.items():
        buttons[name].click(fns[name], inputs, outputs, api_name=name)
