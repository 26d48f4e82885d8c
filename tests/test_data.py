"""The data module on the real MNIST / Fashion-MNIST files."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from cnndemo.data import fetch as data
from cnndemo.catalog import CLASSES
from cnndemo.data.datasets import DataMissingError, get_dataset, load_tensors, raw_folder, train_val_split
from cnndemo.data.fetch import prepare, verify


def test_class_names():
    assert CLASSES["mnist"] == [str(i) for i in range(10)]
    assert CLASSES["fashion_mnist"][0] == "T-shirt/top" and CLASSES["fashion_mnist"][-1] == "Ankle boot"
    assert len(CLASSES["fashion_mnist"]) == 10


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_files_verified(name, request):
    request.getfixturevalue("mnist_ready" if name == "mnist" else "fashion_ready")
    assert verify(name) == []
    x, y = load_tensors(name, train=False)
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    counts = torch.bincount(y, minlength=10)
    if name == "fashion_mnist":
        assert counts.tolist() == [1000] * 10
    else:
        assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    ds = get_dataset(name, train=True)
    assert len(ds) == 60000 and ds.classes[0].startswith(("0", "T-shirt"))


def test_env_var_sets_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNDEMO_DATA", str(tmp_path))
    assert raw_folder("fashion_mnist") == tmp_path / "FashionMNIST" / "raw"


def test_validation_split_is_fixed_and_disjoint():
    a_train, a_val = train_val_split(60000)
    b_train, b_val = train_val_split(60000)
    assert torch.equal(a_val, b_val) and len(a_val) == 5000 and len(a_train) == 55000
    assert len(set(a_train.tolist()) & set(a_val.tolist())) == 0


def test_prepare_from_folder_of_gz_files_verifies_md5(mnist_ready, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for fname in data.FILES:
        with open(raw_folder("mnist") / fname, "rb") as fin, gzip.open(src / f"{fname}.gz", "wb") as fout:
            shutil.copyfileobj(fin, fout)
    root = tmp_path / "root"
    assert prepare("mnist", root=root, source_dir=src) == f"folder {src}"
    assert verify("mnist", root) == []
    assert prepare("mnist", root=root) == "already present"
    # A corrupted byte is caught by the MD5 check.
    path = raw_folder("mnist", root) / "t10k-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[100] = (blob[100] + 1) % 10
    path.write_bytes(bytes(blob))
    assert any("MD5" in p for p in verify("mnist", root))


def test_clear_error_when_no_source_works(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(data, "_from_download", lambda name, root: False)
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist"):
        prepare("fashion_mnist", root=tmp_path / "empty")
    with pytest.raises(DataMissingError, match="python -m cnndemo.data prepare"):
        get_dataset("fashion_mnist", root=tmp_path / "empty")
