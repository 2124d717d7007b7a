"""The Ray Serve application: captions and answers online, a batch-captioning job API and a demo
page. ``serve run serve_apps/config.yaml`` serves it on 127.0.0.1:8000.

Three deployments, each scaling on its own (``config.yaml`` sets replicas, autoscaling, queue
limits and batching):

* ``Api`` (FastAPI ingress): parses and checks requests (``http_inputs.py``), answers 4xx with
  the reason, draws overlays, serves ``/``, ``/docs``, ``/healthz`` and the job endpoints;
* ``People`` (the image path): decodes a photo and finds its people (MoveNet);
* ``Student``: the predictor, with ``@serve.batch``, so concurrent requests share one pass.

The model comes from the config's ``model`` argument or ``P2L3D_MODEL`` (local or ``s3://``).
"""

# No `from __future__ import annotations`: FastAPI reads the route methods' annotations (Request)
# at run time, through Serve's ingress wrapper.

import base64
import os
import time
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from serve_apps.http_inputs import Refused, from_request
from serve_apps.jobs_api import JobsApi, JobsConfig

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MODEL = "runs/quickstart/student"
RETRY_AFTER_S = "1"


def _model(args: dict) -> str:
    return str(args.get("model") or os.environ.get("P2L3D_MODEL") or DEFAULT_MODEL)


@serve.deployment
class People:
    """Photo bytes -> the people in it (box, score, COCO-17 keypoints), or the reason not."""

    def __init__(self, pose_models: str | None = None):
        import torch

        from p2l3d_core.inference.people import PeopleFinder

        torch.set_num_threads(1)
        self.finder = PeopleFinder(pose_models)

    def find(self, data: bytes) -> dict:
        from p2l3d_core.inference.images import BadInput, decode_image

        t0 = time.perf_counter()
        try:
            image = decode_image(data, "image")
        except BadInput as err:
            return {"error": str(err)}
        decoded = time.perf_counter()
        people = self.finder(image)
        return {"people": [{"bbox": p.bbox.tolist(), "score": float(p.score),
                            "keypoints": p.keypoints.tolist()} for p in people],
                "height": image.shape[0], "width": image.shape[1],
                "timings_ms": {"decode": round(1000 * (decoded - t0), 2),
                               "people": round(1000 * (time.perf_counter() - decoded), 2)}}


@serve.deployment
class Student:
    """The predictor. Concurrent calls are batched (``describe``), grouped by their questions."""

    def __init__(self, model: str):
        import torch

        from p2l3d_core.inference.predictor import Predictor

        torch.set_num_threads(1)
        self.predictor = Predictor.from_pretrained(model)
        self.model = model
        self.predictor.questions()  # the question bank embedded once, before any request

    def reconfigure(self, user_config: dict) -> None:
        """``max_batch_size`` and ``batch_wait_timeout_s`` of ``describe``, from the config."""
        self.describe.set_max_batch_size(int(user_config.get("max_batch_size", 16)))
        self.describe.set_batch_wait_timeout_s(float(user_config.get("batch_wait_timeout_s",
                                                                     0.005)))

    def questions(self) -> dict:
        return self.predictor.questions()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def describe(self, items: list[dict]) -> list[dict]:
        """Each item: ``people`` (found by ``People``) or ``keypoints`` + ``format``, and
        ``questions``; returns ``{"people": [...]}`` or ``{"error": ...}`` per item."""
        from p2l3d_core.inference.images import BadInput
        from p2l3d_core.inference.movenet import PersonPose
        from p2l3d_core.inference.predictor import Detected

        t0 = time.perf_counter()
        out: list[dict | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault((tuple(item["questions"]), item.get("format", "coco17")),
                              []).append(i)
        for (questions, fmt), rows in groups.items():
            values = [Detected([PersonPose(np.asarray(p["bbox"], np.float32), float(p["score"]),
                                           np.asarray(p["keypoints"], np.float32))
                                for p in items[i]["people"]]) if "people" in items[i]
                      else np.asarray(items[i]["keypoints"], dtype=np.float64) for i in rows]
            try:
                results = self.predictor.describe_batch(values, list(questions), fmt)
            except BadInput as err:
                for i in rows:
                    out[i] = {"error": str(err)}
                continue
            for i, result in zip(rows, results):
                out[i] = ({"error": result.error} if result.error else
                          {"people": [p.to_dict() for p in result.people]})
        took = round(1000 * (time.perf_counter() - t0), 2)
        for o in out:
            o["timings_ms"] = {"student": took, "batch": len(items)}
        return out


# Defined before the deployments: @serve.deployment keeps a copy of a class with the module's
# globals as they are when it runs.
def _overlay(asked, people: list[dict]) -> str:
    """The request's image (or, for keypoints, a blank canvas around them) with the people
    drawn, as base64 PNG."""
    import cv2

    from p2l3d_core.inference.overlay import draw_people

    if asked.image is not None:
        image = cv2.imdecode(np.frombuffer(asked.image, np.uint8), cv2.IMREAD_COLOR)
    else:
        kp = np.asarray([p["keypoints"] for p in people], dtype=np.float64).reshape(-1, 3)
        right, bottom = (kp[:, :2].max(axis=0) + 80).astype(int) if len(kp) else (320, 320)
        image = np.full((max(bottom, 320), max(right, 320), 3), 255, np.uint8)
    ok, png = cv2.imencode(".png", draw_people(image, people))
    return base64.b64encode(png.tobytes()).decode() if ok else ""


app = FastAPI(title="Pose2Lang3D", version="1",
              description="Captions and answers about the people in a photo or a pose.")


@serve.deployment
@serve.ingress(app)
class Api:
    """HTTP in and out; the work is done by ``People`` and ``Student``."""

    def __init__(self, people: DeploymentHandle, student: DeploymentHandle, model: str,
                 jobs: dict | None = None):
        self.people = people
        self.student = student
        self.model = model
        self.jobs = JobsApi(JobsConfig.from_args(jobs or {}, model))

    async def _describe(self, request: Request, need_question: bool) -> JSONResponse:
        t0 = time.perf_counter()
        try:
            asked = await from_request(request)
            if need_question and not asked.questions:
                raise Refused(400, "no question: give 'question' (a text) or 'questions'")
            timings: dict = {}
            if asked.image is not None:
                found = await self.people.find.remote(asked.image)
                if "error" in found:
                    raise Refused(400, found["error"])
                timings.update(found["timings_ms"])
                item = {"people": found["people"], "questions": asked.questions}
            else:
                item = {"keypoints": asked.keypoints, "format": asked.format,
                        "questions": asked.questions}
            result = await self.student.describe.remote(item)
        except Refused as err:
            return JSONResponse({"error": err.message}, status_code=err.status)
        except BackPressureError:
            return JSONResponse({"error": "overloaded: try again shortly"}, status_code=503,
                                headers={"Retry-After": RETRY_AFTER_S})
        except (RayActorError, ActorUnavailableError):  # a replica died mid-request
            return JSONResponse({"error": "a replica was lost while answering: try again "
                                          "shortly"}, status_code=503,
                                headers={"Retry-After": RETRY_AFTER_S})
        if "error" in result:
            return JSONResponse({"error": result["error"]}, status_code=400)
        people = result["people"]
        if not need_question:
            for p in people:
                p.pop("answers", None)
        timings.update(result["timings_ms"])
        timings["total"] = round(1000 * (time.perf_counter() - t0), 2)
        body = {"people": people, "model": self.model, "timings_ms": timings}
        if request.query_params.get("overlay", "").lower() in ("1", "true", "yes"):
            body["overlay_png_base64"] = _overlay(asked, people)
        return JSONResponse(body)

    @app.post("/v1/caption", summary="Caption every person in a photo, or one pose")
    async def caption(self, request: Request) -> JSONResponse:
        """An image (multipart field ``image``, or JSON ``image_base64``) or JSON
        ``{"keypoints": [[x, y, c], ...], "format": "coco17"}``. ``?overlay=true`` adds the
        picture with skeletons and captions drawn (base64 PNG)."""
        return await self._describe(request, need_question=False)

    @app.post("/v1/answer", summary="Answer questions about every person")
    async def answer(self, request: Request) -> JSONResponse:
        """As ``/v1/caption``, plus ``question`` (free text) or ``questions`` (a list)."""
        return await self._describe(request, need_question=True)

    @app.get("/v1/questions", summary="The question families the model answers")
    async def questions(self) -> dict:
        return {"model": self.model, "families": await self.student.questions.remote()}

    @app.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", "model": self.model}

    @app.get("/", include_in_schema=False)
    async def page(self) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/samples/{name}", include_in_schema=False)
    async def sample(self, name: str):
        path = STATIC / "samples" / Path(name).name
        if not path.is_file():
            return JSONResponse({"error": f"no sample {name!r}"}, status_code=404)
        return FileResponse(path)

    @app.post("/v1/jobs", summary="Batch-caption an archive (needs the jobs token)")
    async def submit_job(self, request: Request) -> JSONResponse:
        """``{"input": "s3://...", "output": "s3://...", "questions": [...]}`` -> a job id.
        Off unless a token is configured; ``Authorization: Bearer <token>``."""
        return await self.jobs.submit(request)

    @app.get("/v1/jobs/{job_id}", summary="A batch job's status, progress and summary")
    async def job_status(self, job_id: str, request: Request) -> JSONResponse:
        return await self.jobs.status(job_id, request)


def build(args: dict) -> serve.Application:
    """The application from the config's arguments: ``model``, ``pose_models``, ``jobs``."""
    model = _model(args)
    return Api.bind(People.bind(args.get("pose_models")), Student.bind(model), model,
                    args.get("jobs"))


def build_from_config(config_path: str | Path, model: str | None = None,
                      jobs: dict | None = None, overrides: dict | None = None
                      ) -> tuple[serve.Application, dict]:
    """The application as ``serve run CONFIG`` builds it, for starting it from Python (tests,
    benchmarks): each deployment's options from the YAML applied with ``.options``, updated by
    ``overrides`` (deployment name -> options). Returns the application and the YAML's
    ``http_options``."""
    import yaml

    config = yaml.safe_load(Path(config_path).read_text())
    spec = config["applications"][0]
    args = dict(spec.get("args") or {})
    if model is not None:
        args["model"] = model
    if jobs is not None:
        args["jobs"] = jobs
    options = {d["name"]: {k: v for k, v in d.items() if k != "name"}
               for d in spec.get("deployments", [])}
    for name, extra in (overrides or {}).items():
        options[name] = {**options.get(name, {}), **extra}
    resolved = _model(args)
    app_ = Api.options(**options.get("Api", {})).bind(
        People.options(**options.get("People", {})).bind(args.get("pose_models")),
        Student.options(**options.get("Student", {})).bind(resolved), resolved, args.get("jobs"))
    return app_, dict(config.get("http_options") or {})
