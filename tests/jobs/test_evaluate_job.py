"""jobs/evaluate.py and distill.py's --real on bad input: a clear message, exit code 2, nothing
written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def test_evaluate_a_folder_without_models_is_refused(tmp_path):
    out = _run(str(REPO / "jobs" / "evaluate.py"), "--run", str(tmp_path), cwd=REPO)
    assert out.returncode == 2
    assert f"no trained models under {tmp_path}" in out.stdout + out.stderr
    assert not (tmp_path / "report").exists()


def test_malformed_set_is_refused(tmp_path):
    out = _run(str(REPO / "jobs" / "evaluate.py"), "--run", str(tmp_path), "--set",
               "no-equals-sign", cwd=REPO)
    assert out.returncode == 2 and "--set wants NAME=DATASET_URI" in out.stderr


def test_latency_settings_out_of_range_are_refused(tmp_path):
    for flags in (("--latency-rounds", "0"), ("--latency-samples", "-1")):
        out = _run(str(REPO / "jobs" / "evaluate.py"), "--run", str(tmp_path), *flags, cwd=REPO)
        assert out.returncode == 2, flags
        assert "latency_samples must be >= 0 and latency_rounds >= 1" in out.stderr, flags
        assert not (tmp_path / "report").exists()


def test_distill_malformed_real_set_is_refused_before_anything_runs(tmp_path):
    out = _run(str(REPO / "jobs" / "distill.py"), "--output", str(tmp_path / "run"),
               "--real", "h36m", cwd=REPO)
    assert out.returncode == 2 and "--real wants NAME=SOURCE, got 'h36m'" in out.stdout + out.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("sets, message", [
    # --set test=URI replaced the test split, and the targets were computed on the other set.
    (["test=/data/other"], "--set test=...: 'test' is the dataset's own test split"),
    (["walk=/a", "walk=/b"], "--set walk=... is given twice"),
    # A path in a name wrote chart files outside report/.
    (["../../x=/a"], "--set '../../x'=...: a set name is letters, digits"),
    (["a/b=/a"], "no path separators or '..'"),
])
def test_set_names_that_would_replace_or_escape_are_refused(evaluate_job, call_main, tmp_path,
                                                            sets, message):
    argv = ["--run", str(tmp_path / "run")]
    for s in sets:
        argv += ["--set", s]
    code, printed = call_main(evaluate_job, *argv)
    assert code == 2 and message in printed
    assert not (tmp_path / "run").exists()


def test_a_negative_eval_poses_is_refused_before_the_lifter_trains(evaluate_job, call_main,
                                                                 tmp_path):
    code, printed = call_main(evaluate_job, "--run", str(tmp_path / "run"), "--eval-poses", "-5")
    assert code == 2 and "eval_poses must be >= 1, got -5" in printed
