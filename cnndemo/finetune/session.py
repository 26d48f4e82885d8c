"""The session side of a fine-tune run: wait for the device, make sure the data is there, copy the starting
weights, relay the device events, then rebuild the model and write its checkpoint with the training
package's ``checkpoint_meta`` / ``save_checkpoint``.

Events are dicts with a ``"type"``: ``waiting``, ``status``, ``start``, ``step``, ``epoch``, ``done``
(device side) and ``finished`` / ``error`` (session side, always the last one). No gradio.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from cnndemo import catalog
from cnndemo.data.datasets import PREPARE_HINT, DataMissingError, load_tensors
from cnndemo.data.fetch import prepare
from cnndemo.device import pick_device
from cnndemo.finetune.job import cached_splits, train_on_device
from cnndemo.finetune.runs import DeviceQueue, QueueFull, RunRegistry
from cnndemo.finetune.spec import (MAX_RUN_SECONDS, FineTuneSpec, FriendlyError, PretrainedLookup, StartPoint, check_budget,
                                   hide_paths, one_line, start_point)
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
        raise FriendlyError(f"{hide_paths(str(exc))}\n\nOn the server, run: `python -m cnndemo.data prepare --dataset {dataset}`. "
                            f"{PREPARE_HINT}") from None
    cached_splits.cache_clear()
    yield {"type": "status", "message": f"{catalog.dataset(dataset).title} prepared ({hide_paths(source)})."}



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
    try:
        save_checkpoint(path, model, meta)
    except BaseException:  # a run that fails here leaves nothing behind (a folder of its own goes)
        if out_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return Outcome(spec, model, meta, str(path), folder, first["acc_before"], done["acc_after"], first["confusion_before"],
                   done["confusion_after"], result.stopped, result.epochs_done, result.seconds, result.images_per_sec)


STOP_FLAG_LINGER_S = 60.0  # an abandoned run's stop flag file stays this long, for a ZeroGPU worker to see it


def run_finetune(spec: FineTuneSpec, session: str, pretrained: PretrainedLookup, registry: RunRegistry,
                 queue: DeviceQueue, device: torch.device | str | None = None,
                 out_dir: str | os.PathLike | None = None, store: SessionModels | None = None,
                 visitor: str | None = None, max_seconds: float = MAX_RUN_SECONDS) -> Iterator[dict]:
    """The session side of a run: limits, queue, data, copy, train on the device, keep the result.

    Yields the device events plus ``waiting`` / ``status`` events, and ends with exactly one
    ``finished`` (carrying the :class:`Outcome`) or ``error`` (a message, no stack trace) event.
    ``device`` is where the finished model is put for the other tabs (the app's device); the outcome is
    recorded in the session's ``store`` (its checkpoint folder is removed with the session).
    Before any work: the settings, the CPU work budget, one run per session and per ``visitor``, and a
    place in the bounded device queue. Training stops after ``max_seconds`` (keeping the last epoch).
    If the consumer goes away (the visitor disconnects: the generator is closed), the stop flag is set
    so that a worker process training elsewhere (ZeroGPU) stops too.
    """
    try:
        spec = spec.validate()
        train_device = str(pick_device())
        check_budget(spec, train_device)
        stop = registry.begin_run(session, visitor)
    except (ValueError, RuntimeError) as exc:
        yield {"type": "error", "message": str(exc)}
        return
    ticket, abandoned = None, False
    try:
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
        began, timed_out = time.monotonic(), False
        for event in train_on_device(spec, start, stop):
            if not timed_out and time.monotonic() - began > max_seconds and not stop.is_set():
                timed_out = True
                stop.set()
                yield {"type": "status", "message": f"Time limit reached ({max_seconds:.0f} s per run): stopping; "
                                                    "the weights of the last completed epoch are kept."}
            if event["type"] == "start":
                first = event
            if event["type"] == "done":
                assert first is not None
                outcome = finish(spec, start, first, event, device or pick_device(), out_dir)
                if store is not None:
                    store.finished(outcome)
                yield {**{k: v for k, v in event.items() if k != "state"}, "type": "done"}
                yield {"type": "finished", "outcome": outcome, "timed_out": timed_out}
                return
            yield event
        yield {"type": "error", "message": "Training ended without a result."}
    except GeneratorExit:  # the consumer went away (the visitor disconnected) while the run was waiting or training
        abandoned = True
        raise
    except (QueueFull, FriendlyError) as exc:
        yield {"type": "error", "message": str(exc)}
    except (ValueError, FileNotFoundError, DataMissingError) as exc:
        yield {"type": "error", "message": hide_paths(str(exc))}
    except Exception as exc:  # noqa: BLE001 - shown as one line, logged in full on the server
        import traceback

        traceback.print_exc(file=sys.stderr)
        yield {"type": "error", "message": f"Fine-tuning failed: {type(exc).__name__}: {one_line(hide_paths(str(exc)))}"}
    finally:
        if abandoned:
            stop.set()  # before the flag file is cleaned up: a worker still training must see it
        if ticket is not None:
            queue.leave(ticket)
        registry.end_run(session, stop, linger=STOP_FLAG_LINGER_S if abandoned else 0.0)
