"""Two labs that live inside the network tabs: the bottleneck calculator (an accordion of the Inception tab,
following its model and module) and "filters that learn" (the first convolution's kernels, in every tab).

Also registers ``/bottleneck(arch, module)`` (JSON). Handlers are plain functions over
:mod:`cnndemo.labs.bottleneck` and :mod:`cnndemo.inspection`; bad names become ``gr.Error`` (``api_errors``).
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from cnndemo import catalog
from cnndemo.app import labs_plots
from cnndemo.app.api import api_errors, api_only
from cnndemo.app.outputs import Picture
from cnndemo.app.prose import Prose
from cnndemo.app.setting_inputs import RadioChoice, SettingText, setting
from cnndemo.app.zoo import ModelZoo
from cnndemo.finetune.store import SessionModels
from cnndemo.inspection.analysis import first_conv_kernels
from cnndemo.inspection.render import kernel_grid
from cnndemo.labs.bottleneck import bottleneck, bottleneck_archs
from cnndemo.settings import choice

BOTTLENECK_INTRO = """An Inception module puts a cheap 1x1 convolution in front of its 3x3 and 5x5 kernels to cut the
channels first. Here is what that saves, branch by branch, for the module selected above: the cost *with* the 1x1
reduction, and *without* it (the same big kernel applied straight to the module's input). Multiply-adds of the
convolutions at the module's real input size; parameters are the branch's own. Seed 004's example is module 3a of
its full-size GoogLeNet: the 5x5 branch costs about 120 M multiply-adds without the reduction, 12.4 M with it.
"""
FILTERS_INTRO = """The first convolution looks at the pixels directly, so its kernels are pictures in their own right:
red = positive weight, blue = negative, all on one scale. Trained, they are stroke, edge and blob detectors; the
Fine-tune tab shows them change epoch by epoch (start from scratch to see them grow out of noise)."""


def bottleneck_report(arch: str, module: str = "") -> dict:
    """``/bottleneck``: the JSON report of one Inception module of ``arch`` (``module`` "" = the first)."""
    return bottleneck(choice("arch", str(arch or "").strip(), bottleneck_archs()), str(module or "").strip())


AS_BUILT = "as built here"  # the bottleneck calculator's first choice: the tab's model itself


def bottleneck_panel(arch: str, module: str | None, variant: str | None) -> tuple[str, Any, str]:
    """(table, chart, the JSON as a code block) for the tab's model and module, or, with ``variant`` the title of a
    catalog variant (:data:`cnndemo.catalog.VARIANTS`), for that variant of the model."""
    chosen = next((v for v in catalog.VARIANTS.values() if v.title == variant), None)
    name = chosen.name if chosen is not None and chosen.arch == arch else arch
    try:
        report = bottleneck(name, module or "")
    except ValueError:  # a module the variant does not have (the course net's): its first module
        report = bottleneck(name, "")
    numbers = f"```json\n{json.dumps(report, indent=1)}\n```"
    return labs_plots.bottleneck_html(report), labs_plots.figure_image(labs_plots.bottleneck_figure(report)), numbers


def build_bottleneck_panel(tab: catalog.Tab, arch: Any, module: Any) -> None:
    """The calculator accordion of an Inception tab; follows the tab's ``arch`` radio and ``module`` dropdown."""
    archs = [a for a in tab.archs if a in bottleneck_archs()]
    if not archs:
        return
    variants = [v for v in catalog.VARIANTS.values() if v.arch in archs]
    # Filled when opened, never while the app starts (building the models and a forward pass cost start-up time).
    # Component types the first screen already shows (radio, HTML, image), so that opening the calculator starts
    # no new browser code and the page carries no event to reveal them (cnndemo.app.deferred).
    with gr.Accordion("Bottleneck calculator: what the 1x1 convolutions save", open=False,
                      elem_id="bottleneck") as accordion:
        Prose(BOTTLENECK_INTRO)
        variant = setting(RadioChoice, "variant", [AS_BUILT, *(v.title for v in variants)], value=AS_BUILT,
                          label="Which GoogLeNet",
                           visible=bool(variants), elem_id="bottleneck-variant")
        table = gr.HTML(elem_id="bottleneck-table")
        chart = Picture(format="png", type="pil", interactive=False, show_label=False, elem_id="bottleneck-chart",
                        buttons=["download"])
        with gr.Accordion("The numbers as JSON (what /bottleneck returns)", open=False, elem_id="bottleneck-numbers"):
            report = Prose(elem_id="bottleneck-json")
    gr.on([accordion.expand, arch.change, module.change, variant.change], bottleneck_panel, [arch, module, variant],
          [table, chart, report], api_visibility="private", show_progress="hidden", trigger_mode="always_last")


def build_bottleneck_api() -> None:
    """``/bottleneck``: takes any model with Inception modules, by name (call inside the app's endpoint page)."""
    name, mod = api_only(SettingText, label="arch"), api_only(SettingText, label="module")
    out = api_only(gr.JSON, label="bottleneck")
    api_only(gr.Button).click(api_errors(bottleneck_report), [name, mod], out, api_name="bottleneck")


def filters_image(zoo: ModelZoo, arch: str, dataset: str, session: SessionModels | None = None):
    """The kernel grid of the first convolution of the model the tab shows (the session's own, if it uses one)."""
    try:
        model, _meta, _own = zoo.resolve(arch, dataset, session)
        return kernel_grid(first_conv_kernels(model), cell=40, cols=16)
    except (LookupError, ValueError):
        return None


def build_filters_panel(tab: catalog.Tab) -> tuple[Any, Any]:
    """The "Filters that learn" accordion and its image, filled when opened (the caller wires both to the tab's
    events; nothing is drawn while the page loads)."""
    with gr.Accordion("Filters that learn: the first convolution's kernels", open=False,
                      elem_id=f"filters-{tab.id}") as accordion:
        Prose(FILTERS_INTRO)
        image = Picture(format="png", type="pil", interactive=False, show_label=False, elem_classes="pixelated",
                        elem_id=f"filters-img-{tab.id}", buttons=["download", "fullscreen"])
    return accordion, image
