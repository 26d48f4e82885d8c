"""What mattered: Grad-CAM, integrated gradients and occlusion, all with Captum.

Each method explains one class score (the predicted class, or one the caller picks) for one
preprocessed input (1 x 1 x 28 x 28 floats in [0, 1]) and returns a 28 x 28 map in the coordinates
of that input, "what the network sees". Plain torch + captum: no gradio.

* ``gradcam``: ``LayerGradCam`` on a layer (default: the last one whose map is still at least 7 x 7),
  ReLU'd, upsampled with ``LayerAttribution.interpolate`` to the model's padded input and cropped
  back to 28 x 28 (VGG pads 28 -> 32 inside the model).
* ``integrated_gradients``: ``IntegratedGradients`` from a black image (the datasets' background).
* ``occlusion``: ``Occlusion`` with a 4 x 4 black patch slid 4 pixels at a time (49 patches tiling 28 x 28,
  one batch: GoogLeNet stays under 150 ms of CPU; stride 3 took 81 patches).

Captum is imported on first use (:func:`captum_attr`): ``captum.attr`` pulls in ``matplotlib.pyplot`` for its
own plotting helpers, which neither start-up nor importing this module should pay for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnndemo.inspection.analysis import layer_shapes
from cnndemo.inspection.hooks import private_view
from cnndemo.insight.receptive_field import resolve_layer
from cnndemo.models import visual_layers
from cnndemo.train.evaluation import model_device

METHODS = ("gradcam", "integrated_gradients", "occlusion")
METHOD_TITLES = {"gradcam": "Grad-CAM", "integrated_gradients": "Integrated gradients", "occlusion": "Occlusion"}
IG_STEPS = 24  # integrated-gradients steps (one batch); at 16 completeness is off by 12 % on a 7 explained as a 1
OCCLUSION_WINDOW, OCCLUSION_STRIDE = 4, 4  # 7 x 7 = 49 patches that tile 28 x 28 exactly, one batch
GRADCAM_MIN_SIDE = 7  # finer maps localise better on 28 x 28 inputs


def captum_attr():
    """The ``captum.attr`` module (imported on first use: it also imports matplotlib.pyplot)."""
    import captum.attr

    return captum.attr


@dataclass
class Attribution:
    """One explanation: ``attribution`` and ``input`` are 28 x 28 CPU float tensors."""

    method: str
    target: int
    target_label: str
    predicted: int
    probs: torch.Tensor
    attribution: torch.Tensor
    input: torch.Tensor
    layer: str | None = None


def default_gradcam_layer(model: nn.Module) -> str:
    """The last visual layer (not a single Inception branch) whose map is at least 7 x 7."""
    shapes = layer_shapes(model)
    candidates = [vl.name for vl in visual_layers(model)
                  if vl.kind != "branch" and min(shapes[vl.name][-2:]) >= GRADCAM_MIN_SIDE]
    return candidates[-1]


def resolve_target(target: int | str | None, classes: list[str], predicted: int) -> int:
    """A class index from ``None``/``""``/``"predicted"`` (the prediction), an index or a class name."""
    if target is None or (isinstance(target, str) and target.strip().lower() in ("", "predicted", "auto")):
        return predicted
    if isinstance(target, str) and target.strip() in classes:
        return classes.index(target.strip())
    try:
        index = int(target)
    except (TypeError, ValueError):
        raise ValueError(f"Unknown target class {target!r}; use a class name ({', '.join(classes)}), "
                         f"an index 0..{len(classes) - 1}, or leave it empty for the predicted class.") from None
    if not 0 <= index < len(classes):
        raise ValueError(f"Target class {index} is out of range; use 0..{len(classes) - 1}.")
    return index


def gradcam(model: nn.Module, x: torch.Tensor, target: int, layer: str) -> torch.Tensor:
    """Grad-CAM of ``layer`` for class ``target``, 28 x 28 (on the model's input grid)."""
    pad = int(getattr(getattr(model, "prep", None), "pad", 0) or 0)
    side = x.shape[-1]
    ca = captum_attr()
    # Captum hooks the layer and keeps the last output it sees: on the shared model that could be another
    # request's pass. Its hooks go on a private view of the model (the same weights) instead.
    view = private_view(model)
    cam = ca.LayerGradCam(view, view.get_submodule(layer)).attribute(x, target=target, relu_attributions=True)
    up = ca.LayerAttribution.interpolate(cam.detach(), (side + 2 * pad, side + 2 * pad), interpolate_mode="bilinear")
    return up[0, 0, pad : pad + side, pad : pad + side]


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: int, steps: int = IG_STEPS) -> torch.Tensor:
    """Integrated gradients from a black baseline, 28 x 28."""
    ig = captum_attr().IntegratedGradients(model)
    attr = ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=steps, internal_batch_size=steps)
    return attr.detach()[0, 0]


def occlusion(model: nn.Module, x: torch.Tensor, target: int, window: int = OCCLUSION_WINDOW,
              stride: int = OCCLUSION_STRIDE) -> torch.Tensor:
    """Drop in the target's score when a black ``window`` x ``window`` patch covers each pixel, 28 x 28."""
    n = ((x.shape[-1] - window) // stride + 1) ** 2
    attr = captum_attr().Occlusion(model).attribute(x, sliding_window_shapes=(1, window, window), strides=(1, stride, stride),
                                      baselines=0.0, target=target, perturbations_per_eval=n)
    return attr.detach()[0, 0]


def attribute(model: nn.Module, x: torch.Tensor, method: str, classes: list[str], target: int | str | None = None,
              layer: str | None = None, ig_steps: int = IG_STEPS) -> Attribution:
    """Explain ``model``'s score of ``target`` (default: the predicted class) for ``x`` (1 x 1 x 28 x 28)
    with ``method`` (one of ``METHODS``). ``layer`` only matters for Grad-CAM (default: see
    :func:`default_gradcam_layer`). ValueError / LookupError with a readable message for bad arguments."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    if tuple(x.shape) != (1, 1, 28, 28):
        raise ValueError(f"Expected one 1 x 1 x 28 x 28 image, got {tuple(x.shape)}.")
    x = x.detach().to(model_device(model)).float()
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), 1)[0].cpu()
    predicted = int(probs.argmax())
    t = resolve_target(target, classes, predicted)
    used_layer = None
    if method == "gradcam":
        used_layer = resolve_layer(model, layer) if layer else default_gradcam_layer(model)
        attr = gradcam(model, x, t, used_layer)
    elif method == "integrated_gradients":
        attr = integrated_gradients(model, x, t, ig_steps)
    else:
        attr = occlusion(model, x, t)
    return Attribution(method, t, classes[t], predicted, probs, attr.float().cpu(), x[0, 0].cpu(), used_layer)
