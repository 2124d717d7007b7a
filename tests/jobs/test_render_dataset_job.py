"""The render job as a user runs it: a subprocess with its own local Ray instance."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import RunsACommand

REPO = Path(__file__).resolve().parents[2]


def run_job(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "jobs" / "render_dataset.py"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**__import__("os").environ, "RAY_AUTH_MODE": "disabled"})


def test_help_explains_the_arguments():
    out = run_job("--help")
    assert out.returncode == 0
    for flag in ("--output", "--num-poses", "--source", "--image-size", "s3://"):
        assert flag in out.stdout


def test_an_empty_output_or_a_file_is_refused_not_taken_for_a_folder(tmp_path):
    out = run_job("--output", "")
    assert out.returncode == 2
    assert "argument --output: an empty path or URI" in out.stderr
    (tmp_path / "notes.txt").write_text("mine")
    out = run_job("--output", str(tmp_path / "notes.txt"))
    assert out.returncode == 2
    assert f"argument --output: {tmp_path / 'notes.txt'} is an existing file" in out.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("args, message", [
    (["--num-poses", "0"], "num_poses must be >= 1"),
    (["--source", "kinect:foo"], "unknown pose source 'kinect:foo'"),
    (["--source", "bvh:/no/such.bvh"], "no such file"),
    (["--image-size", "8"], "image_size must be within"),
    # Rows without captions: a teacher "trained" on them reported R@5 = 1.000.
    (["--num-captions", "0"], "num_captions must be >= 1, got 0"),
    (["--num-captions", "-1"], "num_captions must be >= 1, got -1"),
    (["--concurrency", "0"], "argument --concurrency: must be >= 1, got 0"),
])
def test_bad_arguments_fail_fast_with_a_clear_message(tmp_path, args, message):
    out = run_job("--output", str(tmp_path / "x"), *args)
    assert out.returncode == 2
    assert message in out.stdout + out.stderr


@pytest.mark.slow
def test_job_renders_and_a_rerun_does_nothing(tmp_path):
    out_dir = tmp_path / "ds"
    args = ("--output", str(out_dir), "--num-poses", "60", "--image-size", "64",
            "--shard-size", "30",
            "--num-cpus", "2")
    first = run_job(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "shard 2/2" in first.stdout and "poses per split" in first.stdout
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["num_rows"] == 60
    second = run_job(*args)
    assert second.returncode == 0 and "already complete" in second.stdout


def test_a_refused_pickle_in_cameras_pkl_is_one_line(tmp_path, shared_file):
    """The restricted unpickler refused it, but the job ended in a traceback."""
    import pickle
    import shutil

    source = tmp_path / "h36m"
    source.mkdir()
    shutil.copy(shared_file("poses/mmpose/h36m/test_h36m_body3d.npz"), source)
    marker = tmp_path / "pwned"
    (source / "cameras.pkl").write_bytes(pickle.dumps({("S1", 1): RunsACommand(marker)}))
    out = run_job("--output", str(tmp_path / "out"), "--source",
                  f"h36m:{source / 'test_h36m_body3d.npz'}")
    assert out.returncode == 2 and "Traceback" not in out.stdout + out.stderr
    assert f"refusing to unpickle {source / 'cameras.pkl'}: global 'posix.system'" in out.stdout
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_rerun_right_after_kill_9_of_the_driver_leaves_every_shard_whole_and_listed_once(
        tmp_path):
    """After ``kill -9`` of the render driver its orphaned Ray tasks went on writing shards for
    about 20 s. A re-run started at once must not end with a shard listed twice or half
    written, however the orphans' writes interleave with its own: shard writes are atomic
    (a temporary file renamed), rendering is deterministic, and the manifest lists each index
    once with the size and sha256 of what is on disk."""
    import os
    import signal
    import time

    from p2l3d_core.dataset import load_table
    from p2l3d_core.dataset.shards import damaged_shards, read_manifest

    out = tmp_path / "ds"
    args = ["--output", str(out), "--num-poses", "1200", "--image-size", "64", "--shard-size",
            "60", "--num-cpus", "4"]
    driver = subprocess.Popen([sys.executable, str(REPO / "jobs" / "render_dataset.py"), *args],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    deadline = time.monotonic() + 240
    for line in driver.stdout:  # kill it once the first shard is written, mid-run
        if "shard 1/20" in line or time.monotonic() > deadline:
            break
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    assert not (out / "manifest.json").exists(), "the run finished before it was killed"

    again = run_job(*args)  # at once, while the orphans may still be writing
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    time.sleep(25)  # let any orphan finish its write, then look at what is left
    manifest = read_manifest(str(out))
    paths = [s["path"] for s in manifest["shards"]]
    assert len(paths) == len(set(paths)) == 20
    assert damaged_shards(str(out), hashes=True) == {}
    table = load_table(str(out))
    assert table.num_rows == manifest["num_rows"] == 1200
    assert len(set(table.column("pose_id").to_pylist())) == 1200
    leftovers = [p.name for p in (out / "shards").iterdir() if not p.name.endswith(".parquet")]
    # An orphan killed mid-write may leave its temporary file; readers never list those.
    assert all(".tmp-" in n for n in leftovers), leftovers
