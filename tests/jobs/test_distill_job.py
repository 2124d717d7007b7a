"""The main job as users run it: `ray job submit -- python jobs/distill.py` on a `ray start --head`
cluster, and plain `python jobs/distill.py` for argument errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{os.environ['PATH']}",
            "RAY_TMPDIR": str(tmp_path / "ray")}


def test_bad_stage_and_preset_are_refused(tmp_path):
    for args, message in ((["--stages", "teacher,eval"], "unknown stage(s) ['eval']"),
                          (["--preset", "huge"], "invalid choice: 'huge'")):
        out = subprocess.run([sys.executable, "jobs/distill.py", "--output", str(tmp_path), *args],
                             cwd=REPO, capture_output=True, text=True, timeout=120, env=_env(tmp_path))
        assert out.returncode == 2 and message in out.stdout + out.stderr


@pytest.mark.slow
def test_ray_job_submit_runs_the_whole_pipeline(tmp_path):
    env = _env(tmp_path)
    (tmp_path / "ray").mkdir()
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "4",
                            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                            "--dashboard-port", "8277", "--object-store-memory", str(512 * 1024**2),
                            "--temp-dir", str(tmp_path / "ray")],
                           capture_output=True, text=True, timeout=180, env=env)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        out_dir = tmp_path / "run"
        submit = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", "http://127.0.0.1:8277",
             "--working-dir", str(REPO), "--", "python", "jobs/distill.py", "--preset", "smoke",
             "--output", str(out_dir)],
            cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
        log = submit.stdout + submit.stderr
        assert submit.returncode == 0, log[-4000:]
        assert "succeeded" in log
        report = json.loads((out_dir / "report" / "training.json").read_text())
        assert [m["epoch"] for m in report["student"]["history"]] == [0]
        for stage in ("teacher", "student"):
            assert (out_dir / stage / "model.safetensors").is_file()
            assert json.loads((out_dir / stage / "config.json").read_text())["kind"] == stage
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120, env=env)
