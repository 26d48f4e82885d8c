"""The session side of a fine-tune run: wait for the device, make sure the data is there, copy the starting
weights, relay the device events, then rebuild the model and write its checkpoint with the training
package's ``checkpoint_meta`` / ``save_checkpoint``.

Events are dicts with a ``"type"``: ``waiting``, ``status``, ``start``, ``step``, ``epoch``, ``done``
(device side) and ``finished`` / ``error`` (session side, always the last one). No gradio.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from cnndemo import catalog
from cnndemo.data.datasets import PREPARE_HINT, DataMissingError, load_tensors
from cnndemo.data.fetch import prepare
from cnndemo.device import pick_device
from cnndemo.finetune.job import cached_splits, train_on_device
from cnndemo.finetune.runs import DeviceQueue, RunRegistry
from cnndemo.finetune.spec import FineTuneSpec, FriendlyError, one_line, PretrainedLookup, StartPoint, start_point
from cnndemo.finetune.store import Outcome, SessionModels
from cnndemo.models import build_model
from cnndemo.train.checkpoints import checkpoint_meta, save_checkpoint
from cnndemo.train.loop import Result


def ensure_data(dataset: str) -> Iterator[dict]:
    """Make sure ``dataset`` is on disk: prepare it if missing, or raise :class:`FriendlyError` saying what to run."""
    try:
        load_tensors(dataset, train=True)
        return
    except DataMissingError:
        pass
    yield {"type": "status", "message": f"{catalog.dataset(dataset).title} is not downloaded yet: preparing it (one-off)…"}
    try:
        source = prepare(dataset)
    except DataMissingError as exc:
        raise FriendlyError(f"{exc}\n\nOn the server, run: `python -m cnndemo.data prepare --dataset {dataset}`. "
                            f"{PREPARE_HINT}") from None
    cached_splits.cache_clear()
    yield {"type": "status", "message": f"{catalog.dataset(dataset).title} prepared ({source})."}



def checkpoint_name(spec: FineTuneSpec) -> str:
    """File name of the downloadable checkpoint."""
    return f"{spec.arch}_{spec.dataset}_finetuned_{spec.start}.safetensors"


def finish(spec: FineTuneSpec, start: StartPoint, first: dict, done: dict, device: torch.device | str,
           out_dir: str | os.PathLike | None = None) -> Outcome:
    """Rebuild the trained model from the ``done`` event on ``device`` and write its checkpoint."""
    mean, std = start.normalization
    model = build_model(spec.arch, mean, std, start.config)  # weights come from the run, not from a seed
    model.load_state_dict(done["state"], strict=True)
    model.to(device).eval()
    result = Result(**done["result"])
    extra = {"finetune": {"start": spec.start, "from": start.description, "frozen_all_but_last_block": spec.freeze,
                          "train_images": first["train_size"], "held_out_images": first["val_size"],
                          "held_out_accuracy_before": first["acc_before"], "held_out_accuracy_after": done["acc_after"],
                          "stopped": result.stopped, "spec": asdict(spec)}}
    meta = checkpoint_meta(spec.arch, spec.dataset, model, spec.recipe(), result, done["test_accuracy"],
                           done["test_loss"], done["device"], normalization=(mean, std), config=start.config,
                           val_accuracy=done["acc_after"], **extra)
    folder = str(out_dir or tempfile.mkdtemp(prefix="cnndemo-finetune-"))
    path = Path(folder) / checkpoint_name(spec)
    save_checkpoint(path, model, meta)
    return Outcome(spec, model, meta, str(path), folder, first["acc_before"], done["acc_after"], first["confusion_before"],
                   done["confusion_after"], result.stopped, result.epochs_done, result.seconds, result.images_per_sec)


def run_finetune(spec: FineTuneSpec, session: str, pretrained: PretrainedLookup, registry: RunRegistry,
                 queue: DeviceQueue, device: torch.device | str | None = None,
                 out_dir: str | os.PathLike | None = None, store: SessionModels | None = None) -> Iterator[dict]:
    """The session side of a run: queue, data, copy, train on the device, keep the result.

    Yields the device events plus ``waiting`` / ``status`` events, and ends with exactly one
    ``finished`` (carrying the :class:`Outcome`) or ``error`` (a message, no stack trace) event.
    ``device`` is where the finished model is put for the other tabs (the app's device); the outcome is
    recorded in the session's ``store`` (its checkpoint folder is removed with the session).
    """
    try:
        stop = registry.begin_run(session)
    except RuntimeError as exc:
        yield {"type": "error", "message": str(exc)}
        return
    ticket = None
    try:
        spec = spec.validate()
        train_device = str(pick_device())
        ticket = queue.join(train_device)
        for ahead in queue.wait(ticket, stop):
            yield {"type": "waiting", "ahead": ahead,
                   "message": f"waiting: {ahead} ahead (one training at a time on {train_device})"}
        if stop.is_set():
            yield {"type": "error", "message": "Cancelled while waiting."}
            return
        yield from ensure_data(spec.dataset)
        start = start_point(spec, pretrained)
        first: dict | None = None
        for event in train_on_device(spec, start, stop):
            if event["type"] == "start":
                first = event
            if event["type"] == "done":
                assert first is not None
                outcome = finish(spec, start, first, event, device or pick_device(), out_dir)
                if store is not None:
                    store.finished(outcome)
                yield {**{k: v for k, v in event.items() if k != "state"}, "type": "done"}
                yield {"type": "finished", "outcome": outcome}
                return
            yield event
        yield {"type": "error", "message": "Training ended without a result."}
    except FriendlyError as exc:
        yield {"type": "error", "message": str(exc)}
    except (ValueError, FileNotFoundError, DataMissingError) as exc:
        yield {"type": "error", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - shown as one line, logged in full on the server
        import traceback

        traceback.print_exc(file=sys.stderr)
        yield {"type": "error", "message": f"Fine-tuning failed: {type(exc).__name__}: {one_line(str(exc))}"}
    finally:
        if ticket is not None:
            queue.leave(ticket)
        registry.end_run(session, stop)
