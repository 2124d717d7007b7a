"""The main job as users run it: `ray job submit -- python jobs/distill.py` on a `ray start --head`
cluster, and plain `python jobs/distill.py` for argument errors. (An ``s3://`` run folder is
tested on two nodes, in tests/cluster/test_two_nodes.py.)"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from p2l3d_core.evaluation.compare import TARGETS
from tests.ports import free_ports

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}:{os.environ['PATH']}"}


@pytest.mark.parametrize("args, message", [
    (["--stages", "teacher,eval"], "unknown stage(s) ['eval']"),
    (["--preset", "huge"], "unknown preset 'huge': choose from paper, quickstart, smoke, study"),
    (["--zero-stage", "3"], "invalid choice: 3"),
    (["--baseline-epochs", "0"], "baseline_epochs must be >= 1, got 0"),
    (["--labelled-fraction", "1.5"], "labelled_fraction must be in (0, 1]"),
    (["--seeds", "0"], "seeds must be >= 1, got 0"),
    (["--num-cpus", "0"], "argument --num-cpus: must be >= 1, got 0"),
    # Every input on the command line is checked before the first training, not after it.
    (["--real", "walk=bvh:/no/such.bvh"], "--real: pose source 'bvh:/no/such.bvh': no such file"),
    (["--real", "test=bvh:/no/such.bvh"], "--real test=...: 'test' is the dataset's own test"),
    (["--real", "../x=h36m:/x.npz"], "--real '../x'=...: a set name is letters"),
])
def test_bad_arguments_are_refused_before_anything_runs(distill_job, call_main, args, message,
                                                        tmp_path):
    code, printed = call_main(distill_job, "--output", str(tmp_path / "run"), *args)
    assert code == 2 and message in printed
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the whole smoke pipeline: past 10 min on a machine busy with training
def test_ray_job_submit_runs_the_whole_pipeline(tmp_path):
    env = _env(tmp_path)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix socket paths must stay < 108 bytes
    # Every port fresh: the suite's own local Ray instance may hold the defaults (the dashboard
    # agent's 52365 among them, which leaves the job server "no available agent").
    flags = ("--port", "--dashboard-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port",
             "--node-manager-port", "--object-manager-port", "--ray-client-server-port")
    ports = {flag: str(port) for flag, port in zip(flags, free_ports(len(flags)), strict=True)}
    address = f"http://127.0.0.1:{ports['--dashboard-port']}"
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--num-cpus", "4",
                            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                            *[x for kv in ports.items() for x in kv],
                            "--object-store-memory", str(512 * 1024**2), "--temp-dir", ray_tmp],
                           capture_output=True, text=True, timeout=180, env=env, check=False)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        out_dir = tmp_path / "run"
        for _ in range(24):  # the head's job agent can take a while to come up
            submit = subprocess.run(
                [str(BIN / "ray"), "job", "submit", "--address", address,
                 "--working-dir", str(REPO), "--", "python", "jobs/distill.py", "--preset", "smoke",
                 "--output", str(out_dir)],
                cwd=REPO, capture_output=True, text=True, timeout=900, env=env, check=False)
            log = submit.stdout + submit.stderr
            if "No available agent" not in log:
                break
            time.sleep(5)
        assert submit.returncode == 0, log[-4000:]
        assert "succeeded" in log
        report = json.loads((out_dir / "report" / "training.json").read_text())
        assert [m["epoch"] for m in report["student"]["history"]] == [0]
        for stage in ("teacher", "student"):
            assert (out_dir / stage / "model.safetensors").is_file()
            assert json.loads((out_dir / stage / "config.json").read_text())["kind"] == stage
        for baseline in ("baseline_2d", "baseline_2d_no3d", "coords_2d"):
            assert (out_dir / "baselines" / baseline / "model.safetensors").is_file()
        # the trainings shared the frozen text encoder's sentence features
        assert list((out_dir / "text_features").glob("*/*.safetensors"))
        # the evaluate stage: every method scored, targets stated, charts drawn
        evaluation = json.loads((out_dir / "report" / "report.json").read_text())
        assert set(evaluation["methods"]) == {"student", "teacher", "baseline_2d",
                                              "baseline_2d_no3d", "coords_2d", "lifter", "rules_3d"}
        for metrics in evaluation["methods"].values():
            assert {"vqa_accuracy", "vqa_depth_accuracy", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr",
                    "latency_p50_ms", "answer_latency_p50_ms"} <= set(metrics)
        assert evaluation["methods"]["rules_3d"]["vqa_accuracy"] == 1.0
        assert "pose_to_text_R@5" in evaluation["methods"]["student"]
        markdown = (out_dir / "report" / "report.md").read_text()
        assert set(evaluation["targets"]) == {name for name, _, _ in TARGETS}
        for target in evaluation["targets"].values():  # met or missed, each is stated
            assert target["target"] in markdown
        assert (out_dir / "report" / "test_vqa.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        # not `ray stop`: that would also kill the suite's own Ray instance
        _stop_cluster(ray_tmp, gcs_port=ports["--port"])
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _stop_cluster(temp_dir: str, gcs_port: str) -> None:
    """Kill the processes of the cluster whose temp dir is ``temp_dir``, and their children.
    The Ray client server names neither the temp dir nor its parent, only the GCS port."""
    import psutil

    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if temp_dir in cmdline or f":{gcs_port} " in cmdline + " ":
            procs.append(proc)
            procs.extend(proc.children(recursive=True))
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


def test_relative_paths_reach_the_workers_absolute(distill_job, monkeypatch, tmp_path):
    """Training workers run in other directories: the run folder, the dataset and the teacher a
    student reads must be absolute by the time a training starts. (The teacher job's end-to-end
    test trains from relative paths; S3 URIs stay as they are.)"""
    from p2l3d_core.models.config import preset as model_preset
    from p2l3d_core.training.plan import plan_runs
    from p2l3d_core.training.presets import load_preset

    monkeypatch.chdir(tmp_path)
    args = distill_job.parse_args(["--output", "rel/run", "--data", "ds"])
    assert (args.output, args.data) == (str(tmp_path / "rel" / "run"), str(tmp_path / "ds"))
    assert distill_job.parse_args(["--output", "s3://b/run"]).output == "s3://b/run"
    runs = plan_runs(load_preset("smoke"), ["student"], model_preset("tiny", 32), args.output, 0)
    assert [r.config.teacher_path for r in runs] == [str(tmp_path / "rel" / "run" / "teacher")]


def test_preset_flags_reach_the_plan(distill_job):
    """The job's flags are the presets' override table: what a user types lands in the configs
    the plan trains with."""
    from p2l3d_core.models.config import preset as model_preset
    from p2l3d_core.training.plan import plan_runs
    from p2l3d_core.training.presets import preset_from_args

    args = distill_job.parse_args(["--output", "/runs/x", "--preset", "study", "--seeds", "2",
                                   "--lr-schedule", "cosine", "--answer-kd-weight", "4",
                                   "--student-epochs", "5", "--batch-size", "8"])
    runs = plan_runs(preset_from_args(args), ["teacher", "student", "baselines"],
                     model_preset("tiny", 32), args.output, 0)
    assert {r.config.lr_schedule for r in runs} == {"cosine"}
    assert {r.config.batch_size for r in runs} == {8}
    assert {(r.name, r.config.epochs, r.config.answer_kd_weight) for r in runs
            if r.method == "student"} == {("student", 5, 4.0), ("seeds/student-s1", 5, 4.0)}


def test_a_gpu_preset_without_gpus_is_refused_not_left_waiting(distill_job, call_main, ray_local,
                                                               monkeypatch, tmp_path):
    # The paper preset trains on 8 GPU workers; a local instance without GPUs never gets them.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    run = ["--preset", "paper", "--output", str(tmp_path / "run"), "--stages", "teacher",
           "--data", str(tmp_path / "no-data")]
    # --no-use-gpu takes the preset to CPU workers: past the check, to the missing dataset.
    code, printed = call_main(distill_job, *run, "--no-use-gpu")
    assert code == 2 and "GPU workers" not in printed and "no manifest.json" in printed
    code, printed = call_main(distill_job, *run)
    assert code == 2 and "training wants 8 GPU workers" in printed
    assert "local Ray instance has 0 GPUs" in printed
    assert not (tmp_path / "run").exists()


def test_a_run_folder_holding_another_dataset_is_one_line(distill_job, call_main, ray_local,
                                                         tmp_path):
    """``make quickstart`` into a run folder of the old 23,000-pose quickstart (now ``study``)
    met a dataset built with other arguments: a traceback, naming a flag this job lacks."""
    import json

    (tmp_path / "run" / "dataset").mkdir(parents=True)
    (tmp_path / "run" / "dataset" / "_config.json").write_text(json.dumps(
        {"fingerprint": "another", "config": {"num_poses": 23000}}))
    code, printed = call_main(distill_job, "--preset", "smoke", "--output",
                              str(tmp_path / "run"), "--stages", "render")
    assert code == 2 and "holds a dataset built with other arguments" in printed
    assert f"use another --output, or delete {tmp_path / 'run' / 'dataset'}" in printed
    assert "Traceback" not in printed
