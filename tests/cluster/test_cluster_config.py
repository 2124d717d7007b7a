"""The cluster launcher config: the dashboard (and with it Ray's job API, which runs code) is
never bound to every interface; the placeholder IPs stay documentation-range placeholders."""

import re
from pathlib import Path

import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def test_the_head_binds_the_dashboard_to_its_loopback():
    config = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    [start] = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert "--dashboard-host=127.0.0.1" in start
    for path in CLUSTER.glob("*.yaml"):
        assert "0.0.0.0" not in re.sub(r"#.*", "", path.read_text()), path.name


def test_the_machine_addresses_are_placeholders():
    config = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    ips = [config["provider"]["head_ip"], *config["provider"]["worker_ips"]]
    assert all(ip.startswith("10.0.0.") for ip in ips), ips
    assert "Replace the IPs" in (CLUSTER / "ray-cluster.yaml").read_text()
