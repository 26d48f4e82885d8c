"""The repository is a Hugging Face Space as it is: README.md starts with the Spaces front matter, and its
``sdk_version`` is the gradio pinned in requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Spaces YAML front matter"
    block = text[4:].split("\n---\n", 1)[0]
    return {k.strip(): v.strip().strip('"') for k, v in (line.split(":", 1) for line in block.splitlines() if ":" in line)}


def test_readme_front_matter_makes_a_gradio_space():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    assert meta["pinned"] == "false" and meta["title"] and meta["emoji"]
    colours = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorFrom"] in colours and meta["colorTo"] in colours


def test_sdk_version_is_the_pinned_gradio():
    pins = re.findall(r"^gradio==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.M)
    assert pins == [front_matter()["sdk_version"]]
