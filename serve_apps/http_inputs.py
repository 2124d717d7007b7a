"""What an HTTP request to the app holds, parsed and checked: an image (multipart upload or
base64 JSON) or one person's keypoints, and the questions. Each problem is a :class:`Refused`
with the HTTP status and a message naming it; nothing here touches a model.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from p2l3d_core.inference.asking import check_question
from p2l3d_core.inference.images import BadInput
from p2l3d_core.inference.keypoint_formats import FORMATS, check_keypoints

MAX_BODY_BYTES = 10 * 1024 * 1024  # a 10 MB upload; larger bodies get 413
MAX_QUESTIONS = 16


class Refused(Exception):
    """A request the app will not serve: ``status`` (4xx) and the reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Asked:
    """A parsed request: ``image`` bytes or ``keypoints`` (with ``format``), and questions."""

    image: bytes | None = None
    keypoints: list | None = None
    format: str = "coco17"
    questions: list[str] = field(default_factory=list)


def _questions(question, questions) -> list[str]:
    """``question`` (one text) and/or ``questions`` (a list) as one checked list."""
    out = []
    if question is not None:
        out.append(question)
    if questions is not None:
        if isinstance(questions, str):
            questions = [questions]
        if not isinstance(questions, list):
            raise Refused(400, "'questions' must be a list of texts")
        out += questions
    if len(out) > MAX_QUESTIONS:
        raise Refused(400, f"{len(out)} questions; at most {MAX_QUESTIONS} a request")
    try:
        return [check_question(q, k) for k, q in enumerate(out)]
    except BadInput as err:
        raise Refused(400, str(err)) from None


def from_json(body: bytes) -> Asked:
    """``{"image_base64": ...}`` or ``{"keypoints": [[x, y, c], ...], "format": ...}``, with
    ``question`` or ``questions``."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise Refused(400, f"the body is not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise Refused(400, "the JSON body must be an object")
    questions = _questions(doc.get("question"), doc.get("questions"))
    if "image_base64" in doc:
        text = doc["image_base64"]
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, "image_base64 is empty")
        if text.startswith("data:") and "," in text:  # a data URL from a browser
            text = text.split(",", 1)[1]
        try:
            image = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise Refused(400, "image_base64 is not valid base64") from None
        return Asked(image=image, questions=questions)
    if "keypoints" in doc:
        fmt = doc.get("format", "coco17")
        if fmt not in FORMATS:
            raise Refused(400, f"unknown keypoint format {fmt!r}; one of {', '.join(FORMATS)}")
        try:
            check_keypoints(doc["keypoints"], fmt)
        except BadInput as err:
            raise Refused(400, str(err)) from None
        return Asked(keypoints=doc["keypoints"], format=fmt, questions=questions)
    raise Refused(400, "give 'image_base64' or 'keypoints' (or upload the image as "
                       "multipart/form-data field 'image')")


async def from_request(request) -> Asked:
    """The request's body, by its content type; 413 over :data:`MAX_BODY_BYTES`."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise Refused(413, f"the body is {int(length):,} bytes; the limit is "
                           f"{MAX_BODY_BYTES:,}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise Refused(400, "multipart upload without a file field named 'image'")
        image = await upload.read()
        if len(image) > MAX_BODY_BYTES:
            raise Refused(413, f"the image is {len(image):,} bytes; the limit is "
                               f"{MAX_BODY_BYTES:,}")
        if not image:
            raise Refused(400, "the uploaded image is empty (0 bytes)")
        return Asked(image=image, questions=_questions(form.get("question"),
                                                       form.getlist("questions") or None))
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise Refused(413, f"the body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    if not body:
        raise Refused(400, "empty body: send JSON or a multipart upload")
    if kind == "application/json":
        return from_json(body)
    raise Refused(415, f"unsupported content type {kind or '(none)'!r}: use application/json "
                       "or multipart/form-data")
