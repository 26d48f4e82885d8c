"""The torchvision compatibility shim, exercised in fresh interpreters against the installed pair."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def extension_loads() -> bool:
    """Whether torchvision's compiled ops load with the installed torch (True on a matching pair)."""
    probe = run_python("""
        import sys
        from cnndemo.compat import _extension_path
        import torch
        try:
            torch.ops.load_library(_extension_path())
        except Exception:
            sys.exit(3)
    """)
    assert probe.returncode in (0, 3), probe.stderr
    return probe.returncode == 0


def test_package_imports_torchvision_and_pure_python_parts_work():
    result = run_python("""
        import cnndemo, torch, torchvision
        from torchvision import datasets, transforms, utils, models
        from PIL import Image
        t = transforms.Compose([transforms.Resize(32), transforms.ToTensor()])
        assert t(Image.new("L", (28, 28))).shape == (1, 32, 32)
        assert models.resnet18(num_classes=10)(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
        assert utils.make_grid(torch.zeros(4, 1, 8, 8)).shape[0] == 3
        assert datasets.FashionMNIST.classes[-1] == "Ankle boot"
        try:
            torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
            print("NMS-OK")
        except RuntimeError as e:
            print("NMS-ERR", "custom C++ ops" in str(e))
    """)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    if extension_loads():
        assert warnings == [] and "NMS-OK" in result.stdout
    else:
        # The mismatched pair (this machine: CPU torch + CUDA torchvision): one clear line, ops fail cleanly.
        assert len(warnings) == 1 and warnings[0].startswith("cnndemo warning: torchvision's compiled ops")
        assert "NMS-ERR True" in result.stdout


def test_shim_is_needed_exactly_when_the_extension_fails():
    """Without cnndemo.compat, `import torchvision` fails on the mismatched pair (and only there)."""
    bare = run_python("import torchvision")
    if extension_loads():
        assert bare.returncode == 0
    else:
        assert bare.returncode != 0 and "torchvision::nms does not exist" in bare.stderr


def test_idempotent_and_silent_after_torchvision_is_imported():
    result = run_python("""
        import cnndemo
        from cnndemo.compat import ensure_torchvision
        import torchvision
        first = ensure_torchvision()
        assert ensure_torchvision() is first
    """)
    assert result.returncode == 0, result.stderr
    # the one warning (only where the pair does not match) comes from `import cnndemo`; repeated calls add none
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == (0 if extension_loads() else 1)
