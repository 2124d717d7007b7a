"""Resuming a training reads tensors and plain data only: a pickle planted in a run's checkpoint
must not run, and the resume refuses it naming the file (issue 26, item 1)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hostile import RunsACommand

# A DeepSpeed engine as the training loops build it (ZeRO-2, torch AdamW; fp32 with the cosine
# schedule, or bf16 with none, as on a GPU), in a process of its own: DeepSpeed initialises
# torch.distributed for the whole process.
ENGINE = textwrap.dedent("""
    import os, sys, torch, deepspeed
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2], RANK="0",
                      WORLD_SIZE="1", LOCAL_RANK="0")
    from p2l3d_core.training.safe_checkpoint import CheckpointRefused, load_checkpoint
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    bf16 = sys.argv[4] == "bf16"
    config = {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 2},
              "optimizer": {"type": "AdamW", "params": {"lr": 1e-2, "torch_adam": True}},
              "bf16": {"enabled": bf16}, "steps_per_print": 10**9}
    if not bf16:
        config["scheduler"] = {"type": "WarmupCosineLR", "params": {"total_num_steps": 10,
                                                                   "warmup_num_steps": 2}}
    engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                      config=config)
    def step():
        x = torch.randn(2, 4, dtype=torch.bfloat16 if bf16 else torch.float32)
        loss = engine(x).float().pow(2).sum()
        engine.backward(loss)
        engine.step()
    folder = sys.argv[1]
    if sys.argv[3] == "save":
        step()
        engine.save_checkpoint(folder, tag="state")
        torch.save({k: v.clone() for k, v in engine.module.state_dict().items()},
                   folder + "/expected.pt")
        sys.exit(0)
    step()  # move away from the saved weights, then come back by loading
    try:
        load_checkpoint(engine, folder, "state")
    except CheckpointRefused as err:
        print("REFUSED", err)
        sys.exit(3)
    expected = torch.load(folder + "/expected.pt", weights_only=True)
    same = all(torch.equal(v, expected[k]) for k, v in engine.module.state_dict().items())
    print("RESTORED" if same else "DIFFERENT")
""")


def _engine(folder: Path, action: str, port: int,
            precision: str = "fp32") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ENGINE, str(folder), str(port), action,
                           precision],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt")
    done = _engine(folder, "save", 29611)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return folder


def test_a_bf16_checkpoint_resumes_from_its_tensors(tmp_path):
    """The GPU path's state (bf16, DeepSpeed's bf16 optimizer files) needs no other type."""
    done = _engine(tmp_path, "save", 29614, "bf16")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert list((tmp_path / "state").glob("bf16_*optim_states.pt"))
    done = _engine(tmp_path, "load", 29615, "bf16")
    assert done.returncode == 0 and "RESTORED" in done.stdout, (done.stdout[-2000:]
                                                                + done.stderr[-3000:])


def test_a_genuine_checkpoint_resumes_from_its_tensors(saved):
    done = _engine(saved, "load", 29612)
    assert done.returncode == 0 and "RESTORED" in done.stdout, (done.stdout[-2000:]
                                                                + done.stderr[-3000:])


@pytest.mark.parametrize("victim", ["zero_pp_rank_0_mp_rank_00_optim_states.pt",
                                    "mp_rank_00_model_states.pt"])
def test_a_planted_pickle_is_refused_and_never_runs(saved, tmp_path, victim):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(saved, run)
    marker = tmp_path / "pwned"
    torch.save({"state": RunsACommand(marker)}, run / "state" / victim)
    done = _engine(run, "load", 29613)
    assert not marker.exists(), "the planted command ran"
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"checkpoint file {run / 'state' / victim} holds more than tensors" in done.stdout


@pytest.mark.slow
def test_a_ray_train_run_resumed_over_a_planted_pickle_stops_without_running_it(ray_local,
                                                                                tmp_path):
    """The real resume path: a teacher trains one epoch under Ray Train; a pickle is planted in
    its last checkpoint; the same run asked for a second epoch restores from that checkpoint
    and must fail, naming the file, with the command never run."""
    import ray.data
    import torch

    from p2l3d_core.config import DatasetConfig
    from p2l3d_core.dataset.build import build_table
    from p2l3d_core.models.config import preset
    from p2l3d_core.poses.generator import generate_records
    from p2l3d_core.training.config import TrainConfig
    from p2l3d_core.training.loops import train_teacher
    from p2l3d_core.training.runner import fit

    cols = ["image_2d", "image_3d", "captions", "questions", "answers", "question_families"]
    table = build_table(generate_records(4, 0, 64),
                        DatasetConfig(num_poses=64, image_size=32)).table
    data = {"train": ray.data.from_arrow(table.slice(0, 48).select(cols)),
            "val": ray.data.from_arrow(table.slice(48, 16).select(cols))}
    cfg = TrainConfig(model=preset("tiny", 32), epochs=1, batch_size=16, lr=3e-3)
    fit(train_teacher, cfg, data, name="planted", storage_path=str(tmp_path), max_failures=0)
    [state] = sorted((tmp_path / "planted").glob("checkpoint_*/deepspeed/state"))
    marker = tmp_path / "pwned"
    victim = state / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    assert victim.exists()
    torch.save({"state": RunsACommand(marker)}, victim)
    with pytest.raises(Exception, match="holds more than tensors and plain data"):
        fit(train_teacher, TrainConfig(**{**cfg.__dict__, "epochs": 2}), data, name="planted",
            storage_path=str(tmp_path), max_failures=0)
    assert not marker.exists(), "the planted command ran"
