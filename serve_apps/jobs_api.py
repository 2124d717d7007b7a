"""``/v1/jobs``: batch-caption an archive through the service, as a Ray job running
``jobs/batch_caption.py`` (submitted through Ray's job submission API).

Off unless a token is configured (``jobs.token`` in the config, or ``P2L3D_JOBS_TOKEN``):
starting work and reading buckets must never be open to whoever reaches the port. A request
carries the token as ``Authorization: Bearer <token>`` (401 without, 403 when wrong), and its
input and output must lie under a prefix the config allows (403 otherwise). The model is the
service's own; a caller cannot name another.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse

from serve_apps.http_inputs import Refused, _questions

ROOT = Path(__file__).resolve().parents[1]
_PROGRESS = re.compile(r"(\d+)/(\d+) files, (\d+) frames, (\d+) people, (\d+) errors")


@dataclass
class JobsConfig:
    token: str | None
    allowed_prefixes: list[str] = field(default_factory=list)
    address: str = "http://127.0.0.1:8265"
    model: str = ""
    video_stride: int = 5

    @classmethod
    def from_args(cls, args: dict, model: str) -> JobsConfig:
        token = args.get("token") or os.environ.get("P2L3D_JOBS_TOKEN") or None
        return cls(token=token, allowed_prefixes=list(args.get("allowed_prefixes", [])),
                   address=str(args.get("address") or os.environ.get("RAY_DASHBOARD_ADDRESS")
                               or "http://127.0.0.1:8265"),
                   model=model, video_stride=int(args.get("video_stride", 5)))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class JobsApi:
    def __init__(self, config: JobsConfig):
        self.config = config
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.config.address)
        return self._client

    def _authorise(self, request: Request) -> None:
        if not self.config.token:
            raise Refused(404, "batch jobs are off: no jobs token is configured")
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Refused(401, "missing 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(header[7:].strip().encode(), self.config.token.encode()):
            raise Refused(403, "wrong token")

    def _allowed(self, uri: str, role: str) -> str:
        if not isinstance(uri, str) or not uri:
            raise Refused(400, f"'{role}' is missing")
        if ".." in uri.split("/"):
            raise Refused(403, f"{role} {uri!r}: '..' is not allowed")
        if not any(uri.startswith(p) for p in self.config.allowed_prefixes):
            raise Refused(403, f"{role} {uri!r} is outside the allowed prefixes")
        return uri

    async def submit(self, request: Request) -> JSONResponse:
        try:
            self._authorise(request)
            try:
                doc = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise Refused(400, "the body is not valid JSON") from None
            if not isinstance(doc, dict):
                raise Refused(400, "the JSON body must be an object")
            source = self._allowed(doc.get("input"), "input")
            output = self._allowed(doc.get("output"), "output")
            questions = _questions(doc.get("question"), doc.get("questions"))
        except Refused as err:
            return _error(err.status, err.message)
        command = [sys.executable, str(ROOT / "jobs" / "batch_caption.py"),
                   "--model", self.config.model, "--input", source, "--output", output,
                   "--video-stride", str(self.config.video_stride)]
        for q in questions:
            command += ["--question", q]
        job_id = self.client.submit_job(
            entrypoint=shlex.join(command),
            metadata={"p2l3d_output": output, "p2l3d_input": source})
        return JSONResponse({"job_id": job_id, "status": "PENDING", "input": source,
                             "output": output}, status_code=202)

    async def status(self, job_id: str, request: Request) -> JSONResponse:
        try:
            self._authorise(request)
        except Refused as err:
            return _error(err.status, err.message)
        try:
            info = self.client.get_job_info(job_id)
        except RuntimeError:
            return _error(404, f"no job {job_id!r}")
        metadata = info.metadata or {}
        if "p2l3d_output" not in metadata:
            return _error(404, f"no batch-caption job {job_id!r}")
        body = {"job_id": job_id, "status": str(info.status.value), "message": info.message,
                "input": metadata.get("p2l3d_input"), "output": metadata["p2l3d_output"]}
        progress = _PROGRESS.findall(self.client.get_job_logs(job_id))
        if progress:
            done, total, frames, people, errors = (int(v) for v in progress[-1])
            body["progress"] = {"files_done": done, "files": total, "frames": frames,
                                "people": people, "errors": errors}
        if body["status"] == "SUCCEEDED":
            from p2l3d_core import storage

            try:
                body["summary"] = storage.read_json(
                    storage.join(metadata["p2l3d_output"], "summary.json"))
            except (OSError, ValueError) as err:
                body["summary_error"] = str(err)
        return JSONResponse(body)
