"""Shared fixtures: real data and committed checkpoints, skipping only when they are truly absent."""

from __future__ import annotations

import pytest

import cnndemo  # noqa: F401 - installs the torchvision compatibility shim first
from cnndemo.data import verify


def require_data(name: str) -> None:
    """Skip unless the real dataset files are in the data folder (`python -m cnndemo.data prepare`)."""
    problems = verify(name)
    if problems:
        pytest.skip(f"{name} not prepared: {problems[0]}")


@pytest.fixture(scope="session")
def mnist_ready() -> None:
    require_data("mnist")


@pytest.fixture(scope="session")
def fashion_ready() -> None:
    require_data("fashion_mnist")
