"""The README's first screen gives exactly two set-up commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def first_screen_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    if text.startswith("---\n"):  # the Hugging Face Spaces front matter comes first
        text = text.split("\n---\n", 1)[1]
    head = text.split("\n---\n", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", head, flags=re.S)]


def test_two_setup_commands_on_the_first_screen():
    commands = first_screen_commands()
    assert len(commands) == 2
    run_app, run_tests = commands
    assert "pip install -r requirements.txt" in run_app and run_app.endswith("python app.py")
    assert "requirements-dev.txt" in run_tests and run_tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert first_screen_commands()[1] in ci.splitlines()


def test_requirements_pin_the_real_pair():
    reqs = (ROOT / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in reqs and "torchvision==0.28.0" in reqs
    pinned = [line for line in reqs if "==" in line]
    assert {p.split("==")[0] for p in pinned} >= {"gradio", "torchinfo", "matplotlib", "safetensors"}
