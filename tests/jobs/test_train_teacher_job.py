"""The teacher job end to end as a user runs it: render a tiny dataset, train, export, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "jobs" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"}, check=False)


@pytest.mark.slow
def test_render_then_train_teacher_and_rerun_resumes(tmp_path):
    """Relative paths, as users type them: Ray workers run in other directories, so the jobs
    must hand them absolute ones (rendering tasks, training workers, checkpoints)."""
    out = run("render_dataset.py", "--output", "data", "--num-poses", "120", "--image-size", "32",
              "--shard-size", "60", "--num-cpus", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    args = ("--data", "data", "--output", "run", "--preset", "smoke", "--epochs", "2",
            "--batch-size", "16", "--lr", "3e-3", "--num-workers", "2", "--num-cpus", "4")
    first = run("train_teacher.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "epoch 1: loss" in first.stdout and "best val_vqa" in first.stdout
    # init_ray's local instance has its dashboard, so Ray Train's State API queries answer
    assert "Failed to query Ray Train Controller" not in first.stdout + first.stderr
    meta = json.loads((tmp_path / "run" / "teacher" / "config.json").read_text())
    assert meta["kind"] == "teacher" and meta["model"]["vision"]["image_size"] == 32
    assert meta["model"]["pose_input_3d"] == "image+keypoints"  # the 3D joints, not views alone
    assert list((tmp_path / "run" / "ray" / "teacher").glob("checkpoint_*")), "no checkpoints kept"
    again = run("train_teacher.py", *args, cwd=tmp_path)  # same run: nothing left to train
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"saved to {tmp_path / 'run' / 'teacher'}" in again.stdout


def test_missing_dataset_is_named(tmp_path):
    out = run("train_teacher.py", "--data", str(tmp_path / "nope"), "--output", str(tmp_path / "r"))
    assert out.returncode == 2 and "no manifest.json" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "invalid arguments: batch_size must be >= 1, got 0"),
    (["--labelled-fraction", "0"], "labelled_fraction must be in (0, 1], got 0.0"),
    (["--num-workers", "0"], "num_workers must be >= 1, got 0"),
    (["--preset", "huge"], "unknown preset 'huge'"),
])
def test_bad_arguments_are_refused_before_the_data_is_read(train_teacher_job, call_main, args,
                                                           message, tmp_path):
    code, printed = call_main(train_teacher_job, "--data", str(tmp_path / "nope"),
                              "--output", str(tmp_path / "r"), *args)
    assert code == 2 and message in printed and "no manifest.json" not in printed
    assert not (tmp_path / "r").exists()


def test_a_gpu_run_without_gpus_is_refused_not_left_waiting(train_teacher_job, call_main, ray_local,
                                                            monkeypatch, tmp_path):
    # Ray Train would wait forever for GPUs a local instance never gets.
    from p2l3d_core.config import DatasetConfig
    from p2l3d_core.dataset.pipeline import render_dataset

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    data = str(tmp_path / "data")
    render_dataset(data, DatasetConfig(num_poses=20, image_size=32), log=lambda m: None)
    code, printed = call_main(train_teacher_job, "--data", data, "--output", str(tmp_path / "r"),
                              "--use-gpu", "--num-workers", "2")
    assert code == 2 and "training wants 2 GPU workers" in printed
    assert "local Ray instance has 0 GPUs" in printed and "--no-use-gpu" in printed
    assert not (tmp_path / "r").exists()


@pytest.mark.timeout(60)  # issue 25: bad data never hangs
def test_a_cut_shard_is_named_before_ray_starts(train_teacher_job, call_main, tmp_path):
    """It failed inside a Ray Data task, as a traceback."""
    import json

    data = tmp_path / "ds"
    (data / "shards").mkdir(parents=True)
    (data / "shards" / "part-00000.parquet").write_bytes(b"PAR1 cut short")
    (data / "manifest.json").write_text(json.dumps({"format": "p2l3d-rendered/1", "shards": [
        {"path": "shards/part-00000.parquet", "rows": 10, "bytes": 5000}]}))
    code, printed = call_main(train_teacher_job, "--data", str(data), "--output",
                              str(tmp_path / "run"))
    shard = data / "shards" / "part-00000.parquet"
    assert code == 2
    assert f"shard {shard} is damaged (14 bytes, the manifest recorded 5000)" in printed
    assert "started a local Ray instance" not in printed and not (tmp_path / "run").exists()
