"""Issue 18: the files a session's work writes go with the session, or are never left behind by a failed run.

A fine-tune's checkpoint folder belongs to the session's ``SessionModels`` (removed by ``release``); a run that
fails while writing its checkpoint removes the folder it made. Over HTTP: ``test_session_files_http.py``.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from cnndemo.data.datasets import raw_folder
from cnndemo.finetune import session as ft_session
from cnndemo.finetune.runs import DeviceQueue, RunRegistry
from cnndemo.finetune.session import run_finetune
from cnndemo.finetune.spec import FineTuneSpec
from cnndemo.finetune.store import SessionModels

needs_data = pytest.mark.skipif(not (raw_folder("mnist") / "train-images-idx3-ubyte").is_file(),
                                reason="MNIST missing: run `python -m cnndemo.data prepare`")
TINY = dict(arch="residual_net", dataset="mnist", start="scratch", epochs=1, subset=1000, batch_size=64,
            eval_size=200, test_eval=False)


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """Everything ``tempfile`` makes goes under ``tmp_path`` (so what a run leaves is seen)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(old)


def _left(folder) -> list[str]:
    """What is under ``folder``, but torch's own compile cache (``torchinductor_<user>``, not the app's)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.relative_to(folder).parts[0]
                  .startswith("torchinductor_"))


@needs_data
def test_a_finished_runs_folder_goes_with_its_sessions_release(own_tmp):
    store = SessionModels()
    events = list(run_finetune(FineTuneSpec(**TINY), "s", None, RunRegistry(), DeviceQueue(), store=store))
    outcome = events[-1]["outcome"]
    assert os.path.isfile(outcome.checkpoint) and _left(own_tmp)
    store.release()
    assert _left(own_tmp) == []


@needs_data
def test_a_run_that_fails_writing_its_checkpoint_leaves_no_folder(own_tmp, monkeypatch):
    def full_disk(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ft_session, "save_checkpoint", full_disk)
    store = SessionModels()
    events = list(run_finetune(FineTuneSpec(**TINY), "s", None, RunRegistry(), DeviceQueue(), store=store))
    assert events[-1]["type"] == "error" and "No space left" in events[-1]["message"]
    assert _left(own_tmp) == [], "the failed run's checkpoint folder was left behind"
    assert store.latest is None
