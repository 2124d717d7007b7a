"""Two Ray nodes on this machine (``ray.cluster_utils.Cluster``, Ray's own multi-node test tool):
the jobs run as users run them on a cluster (a driver joined through ``RAY_ADDRESS``), their
work lands on both nodes, and when the second node dies midway they finish on the head with
every input exactly once. Each test asserts where the work ran, from the node ids the outputs
record (the manifest's shards, the models' epoch metrics, the captioning summary)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from serve_apps.try_app import stop_app
from tests.ports import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
CPUS_PER_NODE = 2


class TwoNodes:
    """A head and one worker node, 2 logical CPUs each; the worker can die and come back."""

    def __init__(self, tmp: Path):
        from ray.cluster_utils import Cluster

        self.tmp = tmp
        # No dashboard: nothing here submits through the job API, and the head's dashboard
        # agent would want a port another Ray instance on the machine may hold.
        self.cluster = Cluster(initialize_head=True, connect=False, head_node_args={
            "num_cpus": CPUS_PER_NODE, "object_store_memory": 256 * 1024**2,
            "include_dashboard": False})
        self.worker = None
        self.add_worker()

    @property
    def head_id(self) -> str:
        return self.cluster.head_node.node_id

    def add_worker(self) -> None:
        self.worker = self.cluster.add_node(num_cpus=CPUS_PER_NODE,
                                            object_store_memory=256 * 1024**2)
        self.cluster.wait_for_nodes()

    def kill_worker(self) -> str:
        """Kill every process of the worker node at once (no graceful stop), as a lost
        machine would; returns its node id."""
        node, self.worker = self.worker, None
        self.cluster.remove_node(node, allow_graceful=False)
        return node.node_id

    def start_job(self, script: str, *args: str, log: Path) -> subprocess.Popen:
        """``python jobs/<script> ARGS`` as a driver of this cluster (``RAY_ADDRESS``)."""
        env = {**os.environ, "RAY_ADDRESS": self.cluster.address, "RAY_AUTH_MODE": "disabled"}
        with log.open("w") as out:
            return subprocess.Popen([sys.executable, str(REPO / "jobs" / script), *args],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    def run_job(self, script: str, *args: str, timeout: float = 600) -> str:
        log = self.tmp / f"{script}-{time.monotonic_ns()}.log"
        job = self.start_job(script, *args, log=log)
        try:
            code = job.wait(timeout=timeout)
        finally:
            if job.poll() is None:
                job.kill()
        text = log.read_text()
        assert code == 0, text[-5000:]
        return text

    def shutdown(self) -> None:
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def two_nodes(s3_server, tmp_path_factory):
    """Started after moto's S3 variables are set: the jobs' drivers and workers reach it."""
    nodes = TwoNodes(tmp_path_factory.mktemp("two_nodes"))
    yield nodes
    nodes.shutdown()


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    import uuid

    import boto3

    name = f"two-nodes-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture
def both_up(two_nodes) -> TwoNodes:
    """The cluster with its worker node alive (a test before may have killed it)."""
    if two_nodes.worker is None:
        two_nodes.add_worker()
    return two_nodes


def _wait_for_line(log: Path, text: str, count: int, job: subprocess.Popen,
                   timeout: float = 300) -> None:
    """Until ``text`` appears ``count`` times in the job's log."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert job.poll() is None, f"the job ended first:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, log.read_text()[-4000:]
        time.sleep(0.2)


RENDER = ["--num-poses", "240", "--image-size", "32", "--shard-size", "15"]


@pytest.fixture(scope="module")
def rendered(two_nodes, bucket) -> str:
    """The smoke preset's dataset (240 poses, 32 px) in S3, rendered on both nodes in 16
    shards."""
    if two_nodes.worker is None:
        two_nodes.add_worker()
    two_nodes.run_job("render_dataset.py", "--output", f"{bucket}/data", *RENDER)
    return f"{bucket}/data"


def test_render_writes_shards_from_tasks_on_both_nodes(both_up, rendered):
    from p2l3d_core.dataset.shards import read_manifest

    manifest = read_manifest(rendered)
    nodes = [s["node"] for s in manifest["shards"]]
    assert len(nodes) == 16 and set(nodes) == {both_up.head_id, both_up.worker.node_id}, nodes
    assert manifest["num_rows"] + len(manifest["failures"]) == 240


def test_smoke_distillation_places_train_workers_on_both_nodes(both_up, rendered, bucket):
    """Teacher and student, each with a Ray Train worker on each node, their checkpoints,
    models and report in S3 (written from both nodes); run again, both are kept."""
    from p2l3d_core import storage

    root = f"{bucket}/run"

    def distill() -> str:
        return both_up.run_job("distill.py", "--preset", "smoke", "--data", rendered,
                               "--output", root, "--stages", "teacher,student",
                               "--placement", "spread", timeout=900)

    log = distill()
    assert "ran on 2 node(s)" in log
    both = {both_up.head_id, both_up.worker.node_id}
    report = storage.read_json(storage.join(root, "report", "training.json"))
    for stage in ("teacher", "student"):
        assert set(report[stage]["worker_nodes"]) == both, report[stage]["worker_nodes"]
        # and the exported model says so too: its last epoch's metrics carry the nodes
        config = storage.read_json(storage.join(root, stage, "config.json"))
        assert set(config["metrics"]["worker_nodes"]) == both
        assert storage.exists(storage.join(root, stage, "model.safetensors"))
        assert storage.list_folders(storage.join(root, "ray", stage)), "no checkpoints kept"
    assert not storage.exists(storage.join(root, "student", "deepspeed")), (
        "export copies model/ only")
    # Run again: both models are kept, and the training report keeps their entries.
    assert "student: finished earlier, kept (training 2 of 2;" in distill()
    report = storage.read_json(storage.join(root, "report", "training.json"))
    assert report["teacher"]["epoch"] == 0 and len(report["student"]["history"]) == 1


ORIGINALS = ["poses/mmpose/coco/000000000785.jpg", "poses/mmpose/coco/000000040083.jpg"]


def _photo_archive(folder: Path, shared_file, copies: int) -> list[Path]:
    """``copies`` real photos to caption, each under its own name (``ORIGINALS`` in turn)."""
    folder.mkdir(parents=True)
    return [Path(shutil.copy(shared_file(ORIGINALS[i % len(ORIGINALS)]),
                             folder / f"photo_{i:03d}.jpg")) for i in range(copies)]


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> str:
    import torch

    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    torch.manual_seed(0)
    return str(save_pretrained(Student(preset("tiny", 32, pose_input="image+keypoints")),
                               tmp_path_factory.mktemp("student") / "model"))


def _caption_rows(output: Path) -> list[dict]:
    return [r for part in sorted((output / "parts").glob("*.parquet"))
            for r in pq.read_table(part, columns=["source", "error"]).to_pylist()]


def test_batch_captioning_runs_actors_on_both_nodes(both_up, student, shared_file, tmp_path):
    photos = _photo_archive(tmp_path / "in", shared_file, 8)
    out = tmp_path / "out"
    log = both_up.run_job("batch_caption.py", "--model", student, "--input", str(tmp_path / "in"),
                          "--output", str(out), "--num-workers", "2", "--batch-size", "1")
    summary = json.loads((out / "summary.json").read_text())
    per_node = summary["this_run"]["files_per_node"]
    assert set(per_node) == {both_up.head_id, both_up.worker.node_id}, per_node
    assert sum(per_node.values()) == len(photos)
    assert "files per Ray node" in log
    assert {r["source"] for r in _caption_rows(out)} == {str(p) for p in photos}


def _serve_config(model: str, port: int, path: Path) -> Path:
    """serve_apps/config.yaml on this cluster: the model filled in, a free port, one proxy (on
    one machine every node's proxy would want the same port) and two Student replicas."""
    import yaml

    config = yaml.safe_load((REPO / "serve_apps" / "config.yaml").read_text())
    config["proxy_location"] = "HeadOnly"
    config["http_options"]["port"] = port
    (app,) = config["applications"]
    app["args"]["model"] = model
    for deployment in app["deployments"]:
        if deployment["name"] == "Student":
            del deployment["autoscaling_config"]
            deployment["num_replicas"] = 2
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _replicas(nodes: TwoNodes, deployment: str) -> list[tuple[str, int]]:
    """(node id, process id) of each live replica of ``deployment`` (from the GCS's actor
    table: no dashboard needed). Two may share a node."""
    actors = nodes.cluster.global_state.actor_table(None)
    return [(a["Address"]["NodeID"], a["Pid"]) for a in actors.values()
            if a["ActorClassName"] == f"ServeReplica:p2l3d:{deployment}"
            and a["State"] == "ALIVE"]


def _coco_person(shared_file) -> list[list[float]]:
    annotations = json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())
    best = max(annotations["annotations"], key=lambda a: a["num_keypoints"])
    k = best["keypoints"]
    return [[k[i], k[i + 1], min(k[i + 2], 1)] for i in range(0, 51, 3)]


def test_serve_keeps_answering_when_a_replica_on_the_worker_node_is_killed(
        both_up, student, shared_file, tmp_path):
    """Steady keypoint-caption load on the app (`serve run` on the cluster, two Student
    replicas, one on each node); SIGKILL the worker node's Student replica. The errors seen are
    reported (stdout and serve_fault.json); the app answers throughout, with at most a few
    failures around the kill, and Serve brings the replica back."""
    import threading

    import httpx

    port = free_port()
    config = _serve_config(student, port, tmp_path / "serve.yaml")
    env = {**os.environ, "RAY_ADDRESS": both_up.cluster.address, "RAY_AUTH_MODE": "disabled"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen([str(Path(sys.executable).with_name("serve")), "run",
                                  str(config)], cwd=REPO, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    body = {"keypoints": _coco_person(shared_file), "format": "coco17"}
    results: list[tuple[float, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30, trust_env=False) as client:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    outcome = str(client.post(f"{url}/v1/caption", json=body).status_code)
                except httpx.HTTPError as err:
                    outcome = type(err).__name__
                results.append((t, outcome))

    try:
        deadline = time.monotonic() + 240
        while True:
            assert serve.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        replicas = dict(_replicas(both_up, "Student"))
        assert set(replicas) == {both_up.head_id, both_up.worker.node_id}, replicas
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        time.sleep(5)
        killed_at = time.monotonic()
        killed = replicas[both_up.worker.node_id]
        os.kill(killed, signal.SIGKILL)
        back = None
        while time.monotonic() - killed_at < 120:
            now = _replicas(both_up, "Student")  # two live replicas again, a new one for it
            if len(now) == 2 and killed not in {pid for _, pid in now}:
                back = time.monotonic() - killed_at
                break
            time.sleep(0.5)
        time.sleep(5)  # steady load on the restored app
        stop.set()
        loader.join(timeout=60)
    finally:
        stop.set()
        stop_app(serve)
    errors = [(round(t - killed_at, 2), o) for t, o in results if o != "200"]
    report = {"requests": len(results), "errors": len(errors), "error_outcomes": errors,
              "replica_back_s": back, "after_kill_ok": sum(
                  1 for t, o in results if t > killed_at and o == "200")}
    (tmp_path / "serve_fault.json").write_text(json.dumps(report, indent=1))
    print(f"Serve, Student replica on the worker node SIGKILLed under load: {report}")
    assert back is not None, f"Serve did not bring the replica back in 120 s: {report}"
    assert report["after_kill_ok"] > 10 and len(errors) <= 5, report
    late = [o for t, o in results if t > killed_at + back + 1 and o != "200"]
    assert not late, f"errors after the replica came back: {late}"


def test_render_finishes_on_the_head_when_the_worker_node_dies(both_up, tmp_path):
    out = tmp_path / "data"
    log = tmp_path / "render.log"
    job = both_up.start_job("render_dataset.py", "--output", str(out), "--num-poses", "480",
                            "--image-size", "32", "--shard-size", "10", log=log)
    try:
        _wait_for_line(log, " shard ", 6, job)  # a few shards in, the rest still to render
        killed = both_up.kill_worker()
        assert job.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if job.poll() is None:
            job.kill()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == [
        f"shards/part-{i:05d}.parquet" for i in range(48)]
    nodes = [s["node"] for s in manifest["shards"]]
    assert killed in nodes and nodes.count(both_up.head_id) > nodes.count(killed), nodes
    # every pose exactly once: no shard lost, none duplicated, no pose in two shards
    ids = [i for s in manifest["shards"]
           for i in pq.read_table(out / s["path"], columns=["pose_id"])
           .column("pose_id").to_pylist()]
    assert len(ids) == len(set(ids)) == manifest["num_rows"]
    assert manifest["num_rows"] + len(manifest["failures"]) == 480
    assert sorted(f"shards/{p.name}" for p in (out / "shards").iterdir()) == [
        s["path"] for s in manifest["shards"]], "a stray or half-written shard file"


def test_batch_captioning_finishes_on_the_head_when_the_worker_node_dies(
        both_up, student, shared_file, tmp_path):
    photos = _photo_archive(tmp_path / "in", shared_file, 24)
    originals = [ORIGINALS[i % len(ORIGINALS)] for i in range(len(photos))]
    out = tmp_path / "out"
    log = tmp_path / "caption.log"
    job = both_up.start_job("batch_caption.py", "--model", student, "--input",
                            str(tmp_path / "in"), "--output", str(out), "--num-workers", "2",
                            "--batch-size", "1", log=log)
    try:
        _wait_for_line(log, " files, ", 4, job)  # progress lines: a few files captioned
        killed = both_up.kill_worker()
        assert job.wait(timeout=600) == 0, log.read_text()[-5000:]
    finally:
        if job.poll() is None:
            job.kill()
    rows = [r for part in sorted((out / "parts").glob("*.parquet"))
            for r in pq.read_table(part, columns=["source", "frame", "person", "error"])
            .to_pylist()]
    # every photo exactly once: rows for each (people, or one saying why not), no person twice,
    # and copies of one photo the same number of rows (none captioned twice into two parts)
    assert {r["source"] for r in rows} == {str(p) for p in photos}
    keys = [(r["source"], r["frame"], r["person"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (source, frame, person) is there twice"
    per_original: dict[str, set[int]] = {}
    for photo, original in zip(photos, originals):
        per_original.setdefault(original, set()).add(
            sum(1 for r in rows if r["source"] == str(photo)))
    assert all(len(counts) == 1 for counts in per_original.values()), per_original
    assert len(list((out / "parts").glob("*.parquet"))) == len(photos)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == summary["files_with_rows"] == len(photos)
    per_node = summary["this_run"]["files_per_node"]
    assert per_node.get(killed) and per_node.get(both_up.head_id), per_node
