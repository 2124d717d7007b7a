"""Resuming a training loads tensors and plain data only, never code.

Why: DeepSpeed's own loader calls ``torch.load(..., weights_only=False)`` on the ``*.pt`` files
of a checkpoint, which unpickles arbitrary objects: a file planted in a run's folder (a shared
``s3://`` prefix, say) whose ``__reduce__`` runs a shell command would run it on every worker
at resume, and again at each Ray Train restart. Here the checkpoint engine DeepSpeed loads
through is swapped, for the load alone, for one that reads with ``weights_only=True``: tensors,
containers, numbers and strings, plus the few DeepSpeed types its ZeRO-1/2 state holds
(:func:`allowed_globals`: a loss scaler, an enum, a named tuple). Anything else is refused with
the file named, and nothing in it runs. Saving is DeepSpeed's own.
"""

from __future__ import annotations

import pickle
from contextlib import contextmanager

import torch


class CheckpointRefused(RuntimeError):
    """A checkpoint file holds more than tensors and plain data."""


def allowed_globals() -> list:
    """The non-tensor types DeepSpeed writes into a ZeRO-1/2 checkpoint's optimizer state
    (found by loading one with ``weights_only=True``; tests/training/test_safe_checkpoint.py
    keeps the list honest). Each is rebuilt from data; none runs code from the file."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, ZeroStageEnum, fragment_address]


def load_tensors_only(path: str, map_location=None):
    """``torch.load`` restricted to tensors, plain data and :func:`allowed_globals`."""
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise CheckpointRefused(
            f"checkpoint file {path} holds more than tensors and plain data, so it was not "
            f"loaded (nothing in it ran): {reason}. Delete the run's checkpoints to train "
            "from scratch, or find out who wrote that file") from None


def _tensors_only_engine(engine):
    """A copy of ``engine``'s checkpoint engine whose ``load`` is :func:`load_tensors_only`."""
    original = engine.checkpoint_engine

    class TensorsOnly(type(original)):
        def load(self, path: str, map_location=None):
            return load_tensors_only(path, map_location)

    safe = TensorsOnly.__new__(TensorsOnly)
    safe.__dict__.update(original.__dict__)
    return safe


@contextmanager
def tensors_only_loading(engine):
    """While inside, every file ``engine.load_checkpoint`` reads goes through
    :func:`load_tensors_only`."""
    original = engine.checkpoint_engine
    engine.checkpoint_engine = _tensors_only_engine(engine)
    try:
        yield
    finally:
        engine.checkpoint_engine = original


def load_checkpoint(engine, folder: str, tag: str) -> None:
    """``engine.load_checkpoint(folder, tag=tag)``, reading tensors and plain data only."""
    with tensors_only_loading(engine):
        path, _ = engine.load_checkpoint(folder, tag=tag)
    if path is None:
        raise FileNotFoundError(f"no DeepSpeed checkpoint {tag!r} under {folder}")
