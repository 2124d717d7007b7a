"""FailureConfig: a Ray Train worker process killed mid-epoch (SIGKILL, from outside, as the
kernel's OOM killer or a lost machine would) is restarted; the run resumes from the last
reported checkpoint, finishes the configured epochs and leaves no half-written checkpoint."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray.data

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.models.config import preset
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.runner import best_epoch, export_model, fit

pytestmark = pytest.mark.slow
COLS = ["image_2d", "image_3d", "captions", "questions", "answers", "question_families"]
TRAIN_ROWS, WORKERS, BATCH = 64, 2, 16
STEPS_PER_EPOCH = TRAIN_ROWS // WORKERS // BATCH


@dataclass(frozen=True)
class KillableConfig(TrainConfig):
    pid_folder: str = ""


def teacher_waiting_to_be_killed(config: dict) -> None:
    """The real teacher loop. On the first attempt every rank, at the first step of the second
    epoch (epoch 0's checkpoint reported), writes its process id and waits: the test kills one
    of them there. Nothing in here fails by itself. The restarted attempt finds the test's
    ``killed`` file and trains on."""
    import ray.train

    from p2l3d_core.training import loops

    config = dict(config)
    folder = Path(config.pop("pid_folder"))
    if not (folder / "killed").exists():
        step, calls = loops.teacher_step, itertools.count(1)

        def step_then_wait(*args, **kwargs):
            if next(calls) == STEPS_PER_EPOCH + 1:
                rank = ray.train.get_context().get_world_rank()
                (folder / f"rank{rank}.pid").write_text(str(os.getpid()))
                time.sleep(300)
            return step(*args, **kwargs)

        loops.teacher_step = step_then_wait
    loops.train_teacher(config)


def _registered(run: Path) -> list[dict]:
    """The checkpoints Ray Train has registered for the run (what a restart restores from)."""
    snapshot = run / "checkpoint_manager_snapshot.json"
    if not snapshot.exists():
        return []
    try:
        return json.loads(snapshot.read_text())["checkpoint_results"]
    except (ValueError, KeyError):  # being written
        return []


def _kill_when_waiting(folder: Path, run: Path, rank: int, done: dict) -> None:
    """SIGKILL the worker of ``rank`` once it waits mid-epoch and epoch 0's checkpoint is
    registered (run in a thread beside fit). Why wait for that: Ray Train's controller takes a
    report when it next polls the workers, so a kill within that poll of the report loses the
    epoch (it is trained again) and leaves its folder unregistered."""
    pid_file = folder / f"rank{rank}.pid"
    deadline = time.monotonic() + 240
    while not (pid_file.exists() and _registered(run)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_file.exists():
        (folder / "killed").write_text("")
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        done["pid"] = pid


def test_a_worker_killed_mid_epoch_restarts_from_the_last_checkpoint(ray_local, tmp_path):
    table = build_table(generate_records(4, 0, TRAIN_ROWS + 32),
                        DatasetConfig(num_poses=TRAIN_ROWS + 32, image_size=32)).table
    data = {"train": ray.data.from_arrow(table.slice(0, TRAIN_ROWS).select(COLS)),
            "val": ray.data.from_arrow(table.slice(TRAIN_ROWS, 32).select(COLS))}
    folder = tmp_path / "pids"
    folder.mkdir()
    cfg = KillableConfig(model=preset("tiny", 32), epochs=3, batch_size=BATCH, lr=3e-3,
                         pid_folder=str(folder))
    killed: dict = {}
    run = tmp_path / "ray" / "killed"
    killer = threading.Thread(target=_kill_when_waiting, args=(folder, run, 1, killed),
                              daemon=True)
    killer.start()
    result = fit(teacher_waiting_to_be_killed, cfg, data, name="killed", num_workers=WORKERS,
                 storage_path=str(tmp_path / "ray"), max_failures=2)
    killer.join(timeout=5)
    assert killed, "no worker reached the second epoch to be killed"
    assert result.error is None and result.metrics["epoch"] == 2
    # epoch 0 was trained once and restored, not trained again; epochs 1 and 2 came after
    registered = [c["metrics"]["epoch"] for c in _registered(run)]
    assert registered == [0, 1, 2], f"epochs of the registered checkpoints: {registered}"
    history = [m["epoch"] for m in json.loads(
        (Path(result.checkpoint.path) / "train_state.json").read_text())["history"]]
    assert history == [0, 1, 2], history
    # Every checkpoint folder is whole (Ray Train moves a checkpoint into the run's folder after
    # its files are written) and registered: nothing half-written or orphaned is left.
    checkpoints = sorted(p for p in run.glob("checkpoint_*") if p.is_dir())
    assert [c.name for c in checkpoints] == [c["checkpoint_dir_name"] for c in _registered(run)]
    for checkpoint in checkpoints:
        state = json.loads((checkpoint / "train_state.json").read_text())
        assert state["epoch"] == state["history"][-1]["epoch"]
        assert (checkpoint / "model" / "model.safetensors").stat().st_size > 0
        assert json.loads((checkpoint / "model" / "config.json").read_text())["kind"] == "teacher"
        files = {p.name for p in (checkpoint / "deepspeed" / "state").iterdir()}
        assert files == {"mp_rank_00_model_states.pt", *(
            f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in range(WORKERS))}, files
    # the model exported is the configured last epoch's
    checkpoint, chosen = best_epoch(result, metric=None)
    model = Path(export_model(result, str(tmp_path / "teacher"), checkpoint))
    assert json.loads((model / "config.json").read_text())["metrics"]["epoch"] == 2 == chosen[
        "epoch"]
