"""The app's limits over real HTTP (issue 24): overload answers 503 with Retry-After, never a
crash or an unbounded queue; a request over ``request_timeout_s`` answers 408, not a hung
connection; the app serves again afterwards.

The app runs with tight limits so the behaviour shows on a small machine: People takes one
request at a time and queues one more (config.yaml's are 4 and 64); Serve ends requests after
0.3 s (config.yaml: 30 s).
"""

from __future__ import annotations

import base64
import concurrent.futures

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GROUP_PHOTO = "poses/mmpose/coco/000000197388.jpg"  # five people
TIMEOUT_S = 0.3


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> str:
    """A tiny untrained student whose decoder never ends a text early (its end-of-text logit
    is held at 0 while others are random): every free answer runs to the token budget, so the
    timeout test's 80 free answers take the same long time whatever the random weights (an
    untrained decoder may otherwise end each answer at once)."""
    import torch

    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    torch.manual_seed(2)
    student = Student(preset("tiny", 32, pose_input="image+keypoints"))
    with torch.no_grad():
        student.decoder.lm.get_output_embeddings().weight[student.decoder.eos_id] = 0.0
    return str(save_pretrained(student, tmp_path_factory.mktemp("slow_student") / "model"))


@pytest.fixture(scope="module")
def url(start_app, slow_model) -> str:
    limits = {"People": {"max_ongoing_requests": 1, "max_queued_requests": 1,
                         "autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}}
    return start_app(http={"request_timeout_s": TIMEOUT_S}, deployments=limits,
                     model=slow_model)["url"]


def _photo(shared_file) -> dict:
    return {"image_base64": base64.b64encode(shared_file(GROUP_PHOTO).read_bytes()).decode()}


def test_overload_answers_503_with_retry_after(url, shared_file):
    body = _photo(shared_file)

    def post(_) -> httpx.Response:
        with httpx.Client(timeout=60, trust_env=False) as client:
            return client.post(f"{url}/v1/caption", json=body)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(post, range(16)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 408, 503}, codes  # served, too slow, or refused: nothing else
    refused = [r for r in responses if r.status_code == 503]
    assert refused, f"16 concurrent photos against a queue of 1 were all accepted: {codes}"
    for r in refused:
        assert r.headers.get("retry-after"), r.headers


def test_a_request_over_the_timeout_answers_408(url, shared_file, http):
    # Five people, sixteen questions nothing in the bank matches: 80 free answers to write.
    questions = [f"Question number {k} about the colour of the weather?" for k in range(16)]
    r = http.post(f"{url}/v1/answer", json={**_photo(shared_file), "questions": questions})
    assert r.status_code == 408, (r.status_code, r.text[:300])


def test_the_app_serves_again_after_overload_and_timeouts(url, http):
    assert http.get(f"{url}/healthz").json()["status"] == "ok"
    keypoints = [[100 + 10 * (k % 5), 50 + 20 * k, 1.0] for k in range(17)]
    for _ in range(3):  # a warm request fits the 0.3 s
        r = http.post(f"{url}/v1/caption", json={"keypoints": keypoints, "format": "coco17"})
        if r.status_code == 200:
            break
    assert r.status_code == 200, r.text
    assert r.json()["people"][0]["caption"]
