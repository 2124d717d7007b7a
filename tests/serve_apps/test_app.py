"""The Ray Serve app over real HTTP (issue 24): a local Ray instance, the app deployed from
serve_apps/config.yaml with a tiny untrained student and the real MoveNet people finder, the
real photos and keypoint annotations of ../shared/data, moto's S3 server for /v1/jobs, and
httpx against 127.0.0.1. Nothing is mocked.

The app is built with the jobs API on (a token, allowed prefixes, this Ray's job API), so a
batch job submitted over HTTP really runs jobs/batch_caption.py as a Ray job."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
import uuid

import cv2
import numpy as np
import pytest

from serve_apps.http_inputs import MAX_BODY_BYTES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOKEN = "s3cret"
COCO_PHOTO = "poses/mmpose/coco/000000000785.jpg"  # the skier: one person
GROUP_PHOTO = "poses/mmpose/coco/000000196141.jpg"  # several people
QUESTION = "Is the left knee bent?"
QUESTIONS = ["Which way is the person facing relative to the camera?", "What colour is the shirt?"]
BLAZEPOSE_OF_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
PERSON_FIELDS = {"bbox", "score", "keypoints", "caption"}
ANSWER_FIELDS = {"question", "matched_question", "family", "answer", "sentence", "free_form",
                 "similarity"}
JOB_TIMEOUT_S = 240


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(s3_server) -> str:
    """The name of the bucket the app's jobs may read and write under ok/."""
    return f"serve-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def app(start_app, bucket, s3_server, shared_file) -> dict:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket=bucket)
    for name in ("000000000785.jpg", "000000040083.jpg"):
        s3.put_object(Bucket=bucket, Key=f"ok/in/{name}",
                      Body=shared_file(f"poses/mmpose/coco/{name}").read_bytes())
    s3.put_object(Bucket=bucket, Key="secret/in/camera.png",
                  Body=shared_file("images/camera.png").read_bytes())
    return start_app(jobs={"token": TOKEN, "allowed_prefixes": [f"s3://{bucket}/ok/"]})


@pytest.fixture(scope="module")
def url(app) -> str:
    return app["url"]


@pytest.fixture(scope="module")
def photo(shared_file) -> bytes:
    return shared_file(COCO_PHOTO).read_bytes()


@pytest.fixture(scope="module")
def coco_people(shared_file) -> list[list[list[float]]]:
    """(17, 3) COCO keypoints of annotated people with >= 6 labelled joints, visibility as
    confidence 0 or 1."""
    doc = json.loads(shared_file("poses/mmpose/coco/test_coco.json").read_text())
    out = []
    for a in doc["annotations"]:
        if a["num_keypoints"] >= 6:
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3)
            kp[:, 2] = kp[:, 2] > 0
            out.append(kp.tolist())
    return out


@pytest.fixture(scope="module")
def keypoints_of(shared_file, coco_people) -> dict[str, list]:
    """One real person in each keypoint format."""
    coco = np.asarray(coco_people[0])
    blaze = np.zeros((33, 3))
    blaze[list(BLAZEPOSE_OF_COCO)] = coco
    mpii = json.loads(shared_file("poses/mmpose/mpii/test_mpii.json").read_text())[0]
    mpii16 = np.concatenate([np.asarray(mpii["joints"], float),
                             np.asarray(mpii["joints_vis"], float)[:, None]], axis=1)
    h36m = np.load(shared_file("poses/mmpose/h36m/test_h36m_body3d.npz"))["part"][0]
    return {"coco17": coco.tolist(), "blazepose33": blaze.tolist(), "mpii16": mpii16.tolist(),
            "h36m17": np.asarray(h36m, float).tolist()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _png(width: int, height: int) -> bytes:
    ok, png = cv2.imencode(".png", np.full((height, width, 3), 127, np.uint8))
    assert ok
    return png.tobytes()


def _check_people(body: dict, model: str, answers: int | None = None) -> list[dict]:
    assert body["model"] == model
    people = body["people"]
    for p in people:
        assert set(p) == PERSON_FIELDS | ({"answers"} if answers is not None else set()), p
        assert len(p["bbox"]) == 4 and 0 < p["score"] <= 1
        assert len(p["keypoints"]) == 17 and all(len(k) == 3 for k in p["keypoints"])
        assert isinstance(p["caption"], str) and p["caption"].strip()
        if answers is not None:
            assert len(p["answers"]) == answers
            for a in p["answers"]:
                assert set(a) == ANSWER_FIELDS, a
                assert a["answer"] and a["sentence"] and isinstance(a["free_form"], bool)
                assert -1 <= a["similarity"] <= 1
                if not a["free_form"]:
                    assert a["matched_question"] and a["family"]
    assert body["timings_ms"]["total"] > 0 and body["timings_ms"]["student"] >= 0
    return people


# -- each endpoint ----------------------------------------------------------------------------


def test_healthz(http, app):
    r = http.get(f"{app['url']}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": app["model"]}


def test_caption_a_multipart_upload(http, app, photo):
    r = http.post(f"{app['url']}/v1/caption", files={"image": ("skier.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    people = _check_people(r.json(), app["model"])
    assert len(people) >= 1
    timings = r.json()["timings_ms"]
    assert {"decode", "people", "student", "batch", "total"} <= set(timings)
    height, width = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    for p in people:  # boxes and keypoints in the photo's pixels
        x0, y0, x1, y1 = p["bbox"]
        assert 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height


def test_caption_base64_json_equals_the_upload(http, url, photo):
    upload = http.post(f"{url}/v1/caption", files={"image": ("a.jpg", photo, "image/jpeg")})
    as_json = http.post(f"{url}/v1/caption", json={"image_base64": _b64(photo)})
    data_url = http.post(f"{url}/v1/caption",
                         json={"image_base64": "data:image/jpeg;base64," + _b64(photo)})
    assert upload.status_code == as_json.status_code == data_url.status_code == 200
    assert upload.json()["people"] == as_json.json()["people"] == data_url.json()["people"]


def test_caption_a_group_photo_finds_several_people(http, app, shared_file):
    photo = shared_file(GROUP_PHOTO).read_bytes()
    r = http.post(f"{app['url']}/v1/caption", json={"image_base64": _b64(photo)})
    assert r.status_code == 200, r.text
    assert len(_check_people(r.json(), app["model"])) >= 2


@pytest.mark.parametrize("fmt", ["coco17", "blazepose33", "mpii16", "h36m17"])
def test_caption_keypoints_of_each_format(http, app, keypoints_of, fmt):
    r = http.post(f"{app['url']}/v1/caption",
                  json={"keypoints": keypoints_of[fmt], "format": fmt})
    assert r.status_code == 200, r.text
    (person,) = _check_people(r.json(), app["model"])
    if fmt == "coco17":  # reported as given
        np.testing.assert_allclose(person["keypoints"], keypoints_of[fmt], atol=0.01)
    if fmt == "blazepose33":  # read at its COCO landmarks
        np.testing.assert_allclose(
            person["keypoints"], np.asarray(keypoints_of[fmt])[list(BLAZEPOSE_OF_COCO)],
            atol=0.01)
    assert "decode" not in r.json()["timings_ms"]


def test_keypoints_default_to_coco17(http, url, keypoints_of):
    plain = http.post(f"{url}/v1/caption", json={"keypoints": keypoints_of["coco17"]})
    named = http.post(f"{url}/v1/caption",
                      json={"keypoints": keypoints_of["coco17"], "format": "coco17"})
    assert plain.status_code == named.status_code == 200
    assert plain.json()["people"] == named.json()["people"]


def test_answer_one_question(http, app, photo):
    r = http.post(f"{app['url']}/v1/answer",
                  json={"image_base64": _b64(photo), "question": QUESTION})
    assert r.status_code == 200, r.text
    people = _check_people(r.json(), app["model"], answers=1)
    for p in people:
        (a,) = p["answers"]
        assert a["question"] == QUESTION
        # a paraphrase of a bank question about the left knee
        assert a["free_form"] is False and "left knee" in a["matched_question"]
        assert 0 < a["similarity"] <= 1
    # the captions are those of /v1/caption
    captions = http.post(f"{app['url']}/v1/caption", json={"image_base64": _b64(photo)})
    assert [p["caption"] for p in people] == [p["caption"] for p in captions.json()["people"]]


def test_answer_several_questions_in_order(http, app, keypoints_of):
    r = http.post(f"{app['url']}/v1/answer",
                  json={"keypoints": keypoints_of["mpii16"], "format": "mpii16",
                        "question": QUESTION, "questions": QUESTIONS})
    assert r.status_code == 200, r.text
    (person,) = _check_people(r.json(), app["model"], answers=3)
    assert [a["question"] for a in person["answers"]] == [QUESTION, *QUESTIONS]
    # the shirt's colour is not in the pose: answered free-form by the decoder
    assert person["answers"][2]["free_form"] is True
    assert person["answers"][2]["matched_question"] is None


def test_answer_a_multipart_upload_with_questions(http, app, photo):
    r = http.post(f"{app['url']}/v1/answer",
                  files={"image": ("a.jpg", photo, "image/jpeg")},
                  data={"questions": [QUESTION, QUESTIONS[0]]})
    assert r.status_code == 200, r.text
    people = _check_people(r.json(), app["model"], answers=2)
    assert [a["question"] for a in people[0]["answers"]] == [QUESTION, QUESTIONS[0]]


def test_overlay_of_a_photo_is_a_png_of_its_size(http, url, shared_file):
    for name in (COCO_PHOTO, "images/camera.png"):
        data = shared_file(name).read_bytes()
        height, width = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
        r = http.post(f"{url}/v1/caption?overlay=true", json={"image_base64": _b64(data)})
        assert r.status_code == 200, r.text
        png = base64.b64decode(r.json()["overlay_png_base64"], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        drawn = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert drawn.shape == (height, width, 3)
        plain = http.post(f"{url}/v1/caption", json={"image_base64": _b64(data)})
        assert "overlay_png_base64" not in plain.json()


def test_overlay_of_keypoints_is_a_canvas_around_them(http, url, keypoints_of):
    r = http.post(f"{url}/v1/answer?overlay=1",
                  json={"keypoints": keypoints_of["coco17"], "question": QUESTION})
    assert r.status_code == 200, r.text
    drawn = cv2.imdecode(np.frombuffer(base64.b64decode(r.json()["overlay_png_base64"]),
                                       np.uint8), cv2.IMREAD_COLOR)
    kp = np.asarray(keypoints_of["coco17"])
    seen = kp[kp[:, 2] > 0]
    assert drawn.shape[0] > seen[:, 1].max() and drawn.shape[1] > seen[:, 0].max()


def test_questions_lists_the_families(http, app):
    r = http.get(f"{app['url']}/v1/questions")
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == app["model"]
    families = body["families"]
    assert len(families) >= 3
    assert all(isinstance(v, list) and v and all(isinstance(q, str) for q in v)
               for v in families.values())
    # a family's example, asked, is matched to that family
    family, examples = next(iter(families.items()))
    got = http.post(f"{app['url']}/v1/answer",
                    json={"keypoints": _any_person(), "question": examples[0]}).json()
    (answer,) = got["people"][0]["answers"]
    assert answer["family"] == family and answer["matched_question"] == examples[0]
    assert answer["similarity"] == pytest.approx(1, abs=1e-3)


def _any_person() -> list:
    """A standing person's COCO-17 keypoints (every joint seen)."""
    xy = [(100, 40), (95, 35), (105, 35), (90, 38), (110, 38), (80, 70), (120, 70), (75, 110),
          (125, 110), (72, 150), (128, 150), (90, 150), (110, 150), (90, 210), (110, 210),
          (90, 270), (110, 270)]
    return [[x, y, 1.0] for x, y in xy]


def test_docs_and_openapi(http, url):
    r = http.get(f"{url}/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "swagger" in r.text.lower()
    spec = http.get(f"{url}/openapi.json").json()
    assert {"/v1/caption", "/v1/answer", "/v1/questions", "/v1/jobs", "/healthz"} <= set(
        spec["paths"])


def test_the_demo_page_and_its_samples(http, url):
    page = http.get(f"{url}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="file"' in page.text and 'id="people"' in page.text and "Pose2Lang3D" in page.text
    from serve_apps import app as app_module

    for name in ("camera.png", "000000000785.jpg"):
        r = http.get(f"{url}/samples/{name}")
        assert r.status_code == 200
        assert r.content == (app_module.STATIC / "samples" / name).read_bytes()
    assert http.get(f"{url}/samples/camera.png").headers["content-type"] == "image/png"
    missing = http.get(f"{url}/samples/nope.png")
    assert missing.status_code == 404 and "nope.png" in missing.json()["error"]
    # no way out of the samples folder
    for sneaky in ("..%2Fapp.py", "..%2F..%2Fpyproject.toml", "%2Fetc%2Fpasswd"):
        r = http.get(f"{url}/samples/{sneaky}")
        assert r.status_code == 404, (sneaky, r.text[:200])


def test_concurrent_requests_equal_one_at_a_time(http, url, keypoints_of):
    """Concurrent requests share the student's batches, grouped by questions and format: each
    answer must be the one it gets alone."""
    requests = [({"keypoints": keypoints_of[fmt], "format": fmt, "questions": qs}, path)
                for fmt in ("coco17", "mpii16", "h36m17", "blazepose33")
                for qs, path in (([], "caption"), ([QUESTION], "answer"),
                                 (QUESTIONS, "answer"))]
    alone = [http.post(f"{url}/v1/{path}", json=body).json()["people"] for body, path in requests]
    import httpx

    def send(item):
        body, path = item
        with httpx.Client(timeout=120, trust_env=False) as client:
            return client.post(f"{url}/v1/{path}", json=body).json()

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(send, requests * 2))
    for k, got in enumerate(together):
        assert got["people"] == alone[k % len(requests)], requests[k % len(requests)]


# -- bad inputs -------------------------------------------------------------------------------


def _refused(r, status: int, *words: str) -> str:
    assert r.status_code == status, (r.status_code, r.text[:300])
    message = r.json()["error"]
    for w in words:
        assert w.lower() in message.lower(), (w, message)
    return message


def test_bad_images_are_named(http, url, photo):
    post = lambda body: http.post(f"{url}/v1/caption", json=body)
    _refused(post({"image_base64": "this is not base64!"}), 400, "not valid base64")
    _refused(post({"image_base64": ""}), 400, "image_base64 is empty")
    _refused(post({"image_base64": _b64(b"plain text, not a photo at all")}), 400,
             "not an image")
    _refused(post({"image_base64": _b64(photo[: len(photo) // 2])}), 400, "truncated jpeg")
    _refused(post({"image_base64": _b64(_png(1, 1))}), 400, "1x1 pixels", "too small")
    # the same checks for an upload
    r = http.post(f"{url}/v1/caption", files={"image": ("cut.jpg", photo[:5000], "image/jpeg")})
    _refused(r, 400, "truncated jpeg")
    r = http.post(f"{url}/v1/caption", files={"image": ("e.jpg", b"", "image/jpeg")})
    _refused(r, 400, "empty")
    r = http.post(f"{url}/v1/caption", files={"photo": ("a.jpg", photo, "image/jpeg")})
    _refused(r, 400, "'image'")


def test_a_body_over_the_limit_is_413(http, url, photo):
    big = b"\xff" * (MAX_BODY_BYTES + 1)
    r = http.post(f"{url}/v1/caption", content=big,
                  headers={"content-type": "application/json"})
    _refused(r, 413, f"{MAX_BODY_BYTES:,}")
    r = http.post(f"{url}/v1/caption", files={"image": ("big.jpg", photo + big, "image/jpeg")})
    _refused(r, 413, "limit")


def test_bad_keypoints_are_named(http, url, keypoints_of):
    post = lambda body: http.post(f"{url}/v1/caption", json=body)
    coco = keypoints_of["coco17"]
    _refused(post({"keypoints": coco[:5]}), 400, "(17, 2) or (17, 3)", "(5, 3)")
    _refused(post({"keypoints": coco, "format": "mpii16"}), 400, "mpii16", "(16, 2)")
    _refused(post({"keypoints": [[1, 2, 3, 4]] * 17}), 400, "(17, 4)")
    _refused(post({"keypoints": "elbows"}), 400, "keypoints")
    _refused(post({"keypoints": [["a", "b", 1]] * 17}), 400, "not a numeric array")
    _refused(post({"keypoints": coco, "format": "openpose25"}), 400,
             "unknown keypoint format 'openpose25'", "coco17")
    with_nan = [list(k) for k in coco]
    with_nan[3][0] = "NaN"  # JSON has no NaN: a string that numpy reads as one
    _refused(post({"keypoints": with_nan}), 400, "NaN or infinite", "joints [3]")
    literal = json.dumps({"keypoints": [[float("nan"), 1.0, 1.0]] + coco[1:]})
    assert "NaN" in literal  # Python's json writes (and reads) the NaN literal
    r = http.post(f"{url}/v1/caption", content=literal,
                  headers={"content-type": "application/json"})
    _refused(r, 400, "NaN or infinite", "joints [0]")
    infinite = json.dumps({"keypoints": [[1e400, 1.0, 1.0]] + coco[1:]})  # Infinity
    r = http.post(f"{url}/v1/caption", content=infinite,
                  headers={"content-type": "application/json"})
    _refused(r, 400, "NaN or infinite")
    negative = [list(k) for k in coco]
    negative[2][2] = -1
    _refused(post({"keypoints": negative}), 400, "negative confidence")
    nobody = [[x, y, 0.0] for x, y, _ in coco]
    _refused(post({"keypoints": nobody}), 400, "0 of 17 joints")


def test_bad_questions_are_named(http, url, keypoints_of):
    coco = keypoints_of["coco17"]
    answer = lambda body: http.post(f"{url}/v1/answer", json=body)
    _refused(answer({"keypoints": coco}), 400, "no question")
    _refused(answer({"keypoints": coco, "questions": []}), 400, "no question")
    _refused(answer({"keypoints": coco, "question": "   "}), 400, "question 1: empty")
    _refused(answer({"keypoints": coco, "questions": [QUESTION, ""]}), 400, "question 2: empty")
    _refused(answer({"keypoints": coco, "question": "why " * 100}), 400, "over the limit of 300")
    _refused(answer({"keypoints": coco, "question": 7}), 400, "text expected")
    _refused(answer({"keypoints": coco, "questions": {"a": 1}}), 400, "list of texts")
    _refused(answer({"keypoints": coco, "questions": [QUESTION] * 17}), 400, "at most 16")
    # a bad question is refused on /v1/caption too, though captions need none
    _refused(http.post(f"{url}/v1/caption", json={"keypoints": coco, "question": ""}), 400,
             "empty")


def test_bad_bodies_are_named(http, url):
    r = http.post(f"{url}/v1/caption", content=b"hello", headers={"content-type": "text/plain"})
    _refused(r, 415, "text/plain", "application/json")
    r = http.post(f"{url}/v1/caption", content=b"{}", headers={})
    _refused(r, 415, "(none)")
    r = http.post(f"{url}/v1/caption", content=b"", headers={"content-type": "application/json"})
    _refused(r, 400, "empty body")
    r = http.post(f"{url}/v1/caption", content=b"{not json",
                  headers={"content-type": "application/json"})
    _refused(r, 400, "not valid JSON")
    r = http.post(f"{url}/v1/caption", json=[1, 2])
    _refused(r, 400, "must be an object")
    r = http.post(f"{url}/v1/caption", json={"picture": "x"})
    _refused(r, 400, "image_base64", "keypoints")
    r = http.post(f"{url}/v1/caption", content=b"\xff\xfe\x00",
                  headers={"content-type": "application/json"})
    _refused(r, 400, "not valid JSON")


def test_after_every_bad_input_the_app_still_serves(http, url, photo, keypoints_of):
    """Runs after the refusals above (file order): the replicas are the same and answer."""
    assert http.get(f"{url}/healthz").json()["status"] == "ok"
    r = http.post(f"{url}/v1/answer", json={"image_base64": _b64(photo), "question": QUESTION})
    assert r.status_code == 200 and r.json()["people"]
    r = http.post(f"{url}/v1/caption", json={"keypoints": keypoints_of["coco17"]})
    assert r.status_code == 200 and r.json()["people"]
    from ray import serve

    app = serve.status().applications["p2l3d"]
    assert app.status == "RUNNING"
    assert all(d.status == "HEALTHY" for d in app.deployments.values()), app.deployments


# -- /v1/jobs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jobs_client(app):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(app["dashboard"])


def _submitted(client) -> list[str]:
    return sorted(j.submission_id for j in client.list_jobs() if j.submission_id)


def test_jobs_refusals_submit_nothing(http, url, bucket, jobs_client):
    before = _submitted(jobs_client)
    ok = f"s3://{bucket}/ok"
    body = {"input": f"{ok}/in/", "output": f"{ok}/out-refused/", "question": QUESTION}
    post = lambda doc, **headers: http.post(f"{url}/v1/jobs", json=doc,
                                            headers=headers)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    _refused(post(body), 401, "Authorization: Bearer")
    _refused(post(body, authorization=f"Basic {_b64(b'user:' + TOKEN.encode())}"), 401, "Bearer")
    _refused(post(body, authorization="Bearer wrong"), 403, "wrong token")
    _refused(post(body, authorization=f"Bearer {TOKEN}x"), 403, "wrong token")
    _refused(post({**body, "input": f"s3://{bucket}/secret/in/"}, **bearer), 403, "input",
             "outside the allowed prefixes")
    _refused(post({**body, "output": f"s3://{bucket}/elsewhere/"}, **bearer), 403, "output",
             "outside the allowed prefixes")
    _refused(post({**body, "input": f"{ok}/../secret/in/"}, **bearer), 403, "'..'")
    _refused(post({**body, "input": f"s3://{bucket}/okay/"}, **bearer), 403, "outside")
    _refused(post({**body, "input": "/etc"}, **bearer), 403, "outside")
    _refused(post({"output": body["output"]}, **bearer), 400, "'input' is missing")
    _refused(post({**body, "question": ""}, **bearer), 400, "question 1: empty")
    r = http.post(f"{url}/v1/jobs", content=b"{", headers={**bearer,
                                                            "content-type": "application/json"})
    _refused(r, 400, "not valid JSON")
    # status needs the token too
    _refused(http.get(f"{url}/v1/jobs/raysubmit_x"), 401, "Bearer")
    _refused(http.get(f"{url}/v1/jobs/raysubmit_x", headers={"authorization": "Bearer no"}),
             403, "wrong token")
    _refused(http.get(f"{url}/v1/jobs/raysubmit_nope", headers=bearer), 404, "raysubmit_nope")
    assert _submitted(jobs_client) == before


def test_a_batch_job_runs_and_reports_progress_and_summary(http, url, bucket, jobs_client):
    from p2l3d_core.inference import archive

    bearer = {"authorization": f"Bearer {TOKEN}"}
    before = _submitted(jobs_client)
    output = f"s3://{bucket}/ok/out"
    r = http.post(f"{url}/v1/jobs", headers=bearer,
                  json={"input": f"s3://{bucket}/ok/in", "output": output,
                        "questions": [QUESTION]})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status"] == "PENDING" and r.json()["output"] == output
    assert _submitted(jobs_client) == sorted([*before, job_id])

    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        status = http.get(f"{url}/v1/jobs/{job_id}", headers=bearer)
        assert status.status_code == 200, status.text
        body = status.json()
        if body["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        assert time.monotonic() < deadline, (f"job not done in {JOB_TIMEOUT_S} s: {body}",
                                             jobs_client.get_job_logs(job_id)[-3000:])
        time.sleep(2)
    assert body["status"] == "SUCCEEDED", (body, jobs_client.get_job_logs(job_id)[-5000:])
    assert body["input"] == f"s3://{bucket}/ok/in" and body["output"] == output
    assert body["progress"] == {"files_done": 2, "files": 2, "frames": 2,
                                "people": body["summary"]["people"], "errors": 0}
    summary = body["summary"]
    assert summary["files"] == summary["files_with_rows"] == 2
    assert summary["outcomes"] == {"people found": 2}
    rows = archive.read_rows(output).to_pylist()
    assert {r["source"] for r in rows} == {f"s3://{bucket}/ok/in/000000000785.jpg",
                                           f"s3://{bucket}/ok/in/000000040083.jpg"}
    assert all([a["question"] for a in r["answers"]] == [QUESTION] for r in rows)
