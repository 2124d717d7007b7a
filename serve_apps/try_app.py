"""Start the app on a model, ask it once, stop it: what ``make quickstart`` ends with, and a quick
check that a model serves. Runs ``serve run`` on ``serve_apps/config.yaml`` with the model filled
in (``runs/try_app.yaml``) on a new local Ray instance, waits for ``/healthz``, sends one caption
request for a photo and one question, prints both answers and stops the app.

    .venv/bin/python serve_apps/try_app.py --model runs/quickstart/student [--photo PATH]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT / "serve_apps" / "static" / "samples" / "000000000785.jpg"
URL = "http://127.0.0.1:8000"


def _post(path: str, body: dict) -> dict:
    request = urllib.request.Request(URL + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_healthy(process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve run exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(URL + "/healthz", timeout=2) as response:
                if json.loads(response.read()).get("status") == "ok":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError(f"the app did not answer /healthz within {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a student's model folder")
    p.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    p.add_argument("--question", default="Is the left knee bent?")
    p.add_argument("--timeout", type=float, default=180, help="seconds to wait for the app")
    args = p.parse_args(argv)
    (ROOT / "runs").mkdir(exist_ok=True)
    config = yaml.safe_load((ROOT / "serve_apps" / "config.yaml").read_text())
    config["applications"][0]["args"]["model"] = str(Path(args.model).resolve())
    config_path = ROOT / "runs" / "try_app.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    with open(ROOT / "runs" / "try_app.log", "w") as log:
        return _run(args, config_path, log)


def _run(args: argparse.Namespace, config_path: Path, log) -> int:
    started = time.monotonic()
    serve = Path(sys.executable).with_name("serve")  # the CLI of this environment's Ray
    # --address local: a new Ray instance, never a cluster someone left running here.
    process = subprocess.Popen([str(serve), "run", "--address", "local", str(config_path)],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        _wait_healthy(process, args.timeout)
        print(f"app up at {URL} in {time.monotonic() - started:.0f} s (demo page: {URL}/)")
        image = base64.b64encode(args.photo.read_bytes()).decode()
        caption = _post("/v1/caption", {"image_base64": image})
        for k, person in enumerate(caption["people"]):
            print(f"  POST /v1/caption, person {k + 1}: {person['caption']}")
        answer = _post("/v1/answer", {"image_base64": image, "question": args.question})
        for k, person in enumerate(answer["people"]):
            a = person["answers"][0]
            print(f"  POST /v1/answer, person {k + 1}: Q: {a['question']}  A: {a['sentence']}")
        print(f"  ({answer['timings_ms']['total']:.0f} ms for the question, through HTTP)")
        return 0
    except (RuntimeError, TimeoutError, urllib.error.URLError) as err:
        print(f"error: {err} (log: runs/try_app.log)", file=sys.stderr)
        return 1
    finally:
        stop_app(process)
        print("app stopped")


def stop_app(process: subprocess.Popen) -> None:
    """SIGINT to ``serve run``'s process group (it shuts the app and Ray down), then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    sys.exit(main())
