"""Channel grids and figures: crisp, strongest first, labelled, PNG-ready."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from cnndemo.inspection import render as viz
from cnndemo.inspection.analysis import ResidualView


def test_strongest_first_order():
    maps = torch.zeros(5, 4, 4)
    for c, peak in enumerate([0.5, 3.0, 0.0, 2.0, 1.0]):
        maps[c, 1, 2] = peak
    assert viz.strongest_first(maps.numpy()) == [1, 3, 4, 0, 2]


def test_channel_grid_layout_and_crisp_pixels():
    maps = torch.rand(12, 7, 7)
    im = viz.channel_grid(maps, max_channels=8, cols=4, cell=70)
    assert im.mode == "P"  # one byte per pixel: see cnndemo.inspection.palette
    factor = 70 // 7
    gap, label_h, top = 6, 15, 4
    assert im.width == 4 * 7 * factor + 5 * gap
    assert im.height == top + 2 * (7 * factor + label_h + gap) + gap
    a = np.asarray(im.convert("RGB"))
    tile = a[top:top + 7 * factor, gap:gap + 7 * factor]
    blocks = tile.reshape(7, factor, 7, factor, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()  # nearest-neighbour: each activation is a flat square


def test_channel_grid_colors_follow_the_colormap():
    maps = np.zeros((1, 2, 2), np.float32)
    maps[0, 0, 0] = 1.0
    a = np.asarray(viz.channel_grid(maps, cols=1, cell=2).convert("RGB"))
    lut = viz.lut(viz.SEQUENTIAL)
    assert tuple(a[4, 6]) == tuple(lut[255]) and tuple(a[4, 7]) == tuple(lut[0])


def test_signed_maps_use_the_diverging_map_centred_on_zero():
    maps = np.zeros((1, 1, 3), np.float32)
    maps[0, 0] = [-1.0, 0.0, 1.0]
    a = np.asarray(viz.channel_grid(maps, cols=1, cell=3).convert("RGB"))
    lut = viz.lut(viz.DIVERGING)
    assert tuple(a[4, 6]) == tuple(lut[0]) and tuple(a[4, 8]) == tuple(lut[255])
    assert np.abs(a[4, 7].astype(int) - lut[128].astype(int)).max() <= 2


def test_grid_encodes_as_png_losslessly():
    im = viz.channel_grid(torch.rand(16, 14, 14))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")),
                          np.asarray(im.convert("RGB")))


def test_palette_grid_matches_the_colormap_and_labels_every_channel():
    rng = np.random.default_rng(1)
    maps = rng.random((6, 5, 5)).astype(np.float32)
    factor, gap, top, label_h = 4, 6, 4, 15
    a = np.asarray(viz.channel_grid(maps, cols=3, cell=20, strongest=False).convert("RGB")).astype(int)
    lut = viz.lut(viz.SEQUENTIAL).astype(int)
    layer_peak = maps.max()
    for c in range(6):
        r, q = divmod(c, 3)
        y, x = top + r * (5 * factor + label_h + gap), gap + q * (5 * factor + gap)
        want = lut[np.round(maps[c] / max(maps[c].max(), 0.25 * layer_peak) * 255).astype(int)]
        got = a[y:y + 5 * factor:factor, x:x + 5 * factor:factor]
        assert np.abs(got - want).max() <= 6  # 224 palette levels of the 256-entry colormap
        strip = a[y + 5 * factor + 1:y + 5 * factor + label_h, x:x + 5 * factor]
        assert (strip.sum(-1) < 3 * 160).sum() > 10  # dark label pixels in every channel's strip


def test_input_image_is_a_crisp_upscale():
    a = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    im = viz.input_image(a, factor=8)
    assert im.size == (224, 224)
    assert im.mode == "L"
    g = np.asarray(im)
    assert g[3, 3] == round(a[0, 0] * 255) and g[8 * 27 + 7, 8 * 27 + 7] == round(a[27, 27] * 255)


def test_residual_figure_has_a_row_per_block():
    views = [ResidualView(f"net.block{i}", torch.rand(4, 8, 8), torch.randn(4, 8, 8), torch.rand(4, 8, 8),
                          torch.rand(4, 8, 8)) for i in range(3)]
    im = viz.residual_figure(views, cell=64)
    assert im.height == 24 + 3 * (64 + 8) + 8
