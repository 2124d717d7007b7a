"""The one path from inputs to people with captions and answers.

``Predictor.from_pretrained(path)`` loads a model folder (local or ``s3://``) and prepares it
for answering (``prepare.for_inference``). ``describe(input, questions)`` takes a photo (encoded
bytes or a BGR array) or one person's keypoints (COCO-17, BlazePose-33, MPII-16 or H36M-17) and
returns the people in it, each with a caption and one answer per question; ``describe_batch``
does the same for many inputs in one pass (what the batch job and Serve's batching call), with
the same results as one at a time and a per-input error instead of an exception.

Evaluation, ``jobs/describe.py``, ``jobs/batch_caption.py`` and ``serve_apps/`` all stand on this
module: :meth:`Predictor.embed`, :meth:`captions` and :meth:`answer_known` are the steps they
share.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from p2l3d_core.inference.asking import Match, QuestionMatcher, check_question
from p2l3d_core.inference.images import BadInput, as_image
from p2l3d_core.inference.keypoint_formats import (
    MIN_CONFIDENCE,
    MIN_JOINTS,
    box_of,
    check_keypoints,
    joints_known,
    to_coco17,
    to_model_joints,
)
from p2l3d_core.inference.prepare import for_inference
from p2l3d_core.models.decoder import CAPTION_PROMPT, question_prompt
from p2l3d_core.models.inputs import images_to_tensor
from p2l3d_core.models.keypoints import keypoint_features
from p2l3d_core.render import RenderConfig, render_2d


@dataclass
class Answer:
    """One question's answer about one person. ``matched_question`` is the bank question the
    answer head read (None when ``free_form``: the decoder wrote the answer)."""

    question: str
    matched_question: str | None
    family: str | None
    answer: str
    sentence: str
    free_form: bool
    similarity: float


@dataclass
class Person:
    """A person found in an input: box and COCO-17 ``[x, y, confidence]`` keypoints in image
    pixels, the estimator's score, and what the model says. ``track`` is the person's id across
    a video's frames (None for a photo or keypoints)."""

    bbox: list[float]
    score: float
    keypoints: list[list[float]]
    caption: str = ""
    answers: list[Answer] = field(default_factory=list)
    track: int | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.track is None:
            out.pop("track")
        return out


@dataclass
class Described:
    """One input's outcome in a batch: its people, or the reason it could not be read."""

    people: list[Person]
    error: str | None = None


@dataclass
class Detected:
    """People an estimator already found in an image (``PersonPose`` each): an input for
    :meth:`Predictor.describe_batch` when finding and describing run apart (Ray Serve's image
    and student deployments)."""

    people: list


@dataclass
class _Found:
    """A person before the model: H36M joints for the model, COCO keypoints for the user."""

    joints: np.ndarray  # (17, 2), NaN = missing
    person: Person


GUIDE_THRESHOLD = 0.9
"""A caption clause needs this much of the answer head's probability. Measured on the
quickstart student (``benchmarks/caption_grammar.py``, 300 poses a set), caption precision on
the test split / cmu_walk / cmu_hop / cmu_walk2: free decoding 0.45 / 0.42 / 0.33 / 0.11, the
grammar alone 0.67 / 0.49 / 0.49 / 0.35, backed at 0.8 0.92 / 0.85 / 0.86 / 0.79, at 0.9
0.96 / 0.93 / 0.91 / 0.84 (BLEU-4 on the test split 0.41 free, 0.34 at 0.8, 0.31 at 0.9).
Where the head backs no clause at all, the caption is written from the grammar alone."""


class Predictor:
    """A prepared model and what it needs to answer: its vocabulary, render settings, the
    question matcher and (for photos) a people finder, made on first use."""

    def __init__(self, model, render: RenderConfig | None = None, people_finder=None,
                 batch_size: int = 64, name: str = "", constrained: bool = True,
                 guide_threshold: float | None = GUIDE_THRESHOLD):
        self.model = model if getattr(model, "prepared_for_inference", False) else (
            for_inference(model))
        self.vocab = model.vocab
        self.pose_input = model.cfg.pose_input
        self.reads_3d = model.kind == "teacher"
        self.render = render or RenderConfig(image_size=model.cfg.vision.image_size)
        self.batch_size = batch_size
        self.name = name
        self._people_finder = people_finder
        self._matcher: QuestionMatcher | None = None
        self.last_timings_ms: dict[str, float] = {}
        # Captions within the caption grammar (models/grammar.py): every clause a template's,
        # none twice. False: free greedy decoding with the n-gram repetition rule.
        self.constrained = constrained
        # A clause is written only where the answer head gives it at least this probability
        # (models/grammar.py, CaptionGrammar.closed_by); None: the grammar alone.
        self.guide_threshold = guide_threshold

    @classmethod
    def from_pretrained(cls, path: str, people_finder=None, batch_size: int = 64) -> Predictor:
        """The model folder at ``path`` (local or ``s3://``), checked and prepared. Its stored
        render settings are the ones ``load_pretrained`` checked against the model's config."""
        from p2l3d_core.models.io import load_pretrained

        return cls(load_pretrained(path), None, people_finder, batch_size, name=str(path))

    # -- the steps every caller shares ------------------------------------------------------

    @torch.no_grad()
    def embed(self, joints: np.ndarray, images: np.ndarray | None = None,
              inputs_3d: dict | None = None) -> torch.Tensor:
        """Pose states (``model.pose_state``: the embedding, then the geometry for a model that
        reads one) of ``(N, 17, 2)`` H36M-17 pixel joints (NaN = missing). ``images``:
        their skeleton images already drawn (a rendered dataset's), else drawn here with the
        model's render settings. ``inputs_3d``: a teacher's 3D inputs (evaluation only)."""
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, 17, 2)
        if self.reads_3d and inputs_3d is None:
            raise ValueError("a teacher reads 3D joints too: describe photos and keypoints with "
                             "a student")
        out = []
        for start in range(0, len(joints), self.batch_size):
            part = slice(start, start + self.batch_size)
            inputs: dict[str, torch.Tensor] = {}
            if "image" in self.pose_input:
                drawn = (images[part] if images is not None
                         else np.stack([render_2d(j, self.render) for j in joints[part]]))
                inputs["image"] = images_to_tensor(drawn)
            if "keypoints" in self.pose_input:
                known = np.isfinite(joints[part]).all(-1)
                inputs["keypoints"] = torch.from_numpy(keypoint_features(joints[part], known))
            x3 = None if inputs_3d is None else {k: v[part] for k, v in inputs_3d.items()}
            out.append(self.model.pose_state(inputs, x3))
        return torch.cat(out) if out else torch.zeros(0, self.state_width)

    @property
    def state_width(self) -> int:
        """Numbers a pose state holds: the embedding's, and the geometry's if any."""
        return self.model.cfg.embed_dim + self.model.answers.geometry_width

    @torch.no_grad()
    def captions(self, z: torch.Tensor) -> list[str]:
        """A caption for each embedding (greedy decoding, in batches of ``batch_size``; within
        the caption grammar, and agreeing with the model's own answer head, unless
        ``constrained`` is False)."""
        out: list[str] = []
        grammar = self.model.decoder.caption_grammar if self.constrained else None
        for start in range(0, len(z), self.batch_size):
            zb = z[start:start + self.batch_size]
            closed = (self._closed_units(zb, grammar)
                      if grammar is not None and self.guide_threshold is not None else None)
            out += self.model.decoder.generate(self.model.embedding_of(zb),
                                               [CAPTION_PROMPT] * len(zb), grammar=grammar,
                                               closed=closed)
        return out

    def _closed_units(self, z: torch.Tensor, grammar) -> list[frozenset[int]]:
        """Per pose, the caption clauses its answer head does not back (``closed_by``): the
        head answers every question a clause can fix (``language.grammar.guide_questions``),
        in one batch."""
        bank = {q for _, q in self.vocab.bank}
        if not all(q in bank for _, q in grammar.guides):  # asked other questions: no guidance
            return [frozenset()] * len(z)
        n, k = len(z), len(grammar.guides)
        rows = torch.arange(n).repeat_interleave(k)
        probabilities = self.model.answer_distribution(
            z[rows], [q for _ in range(n) for _, q in grammar.guides],
            [f for _ in range(n) for f, _ in grammar.guides]).view(n, k, -1).tolist()
        index = {a: i for i, a in enumerate(self.vocab.answers)}
        return [grammar.closed_by(p, index, self.guide_threshold) for p in probabilities]

    @torch.no_grad()
    def answer_known(self, z: torch.Tensor, rows, questions: list[str],
                     families: list[str], batch: int = 512) -> list[str]:
        """Answers of bank questions of known family: question ``k`` about pose ``rows[k]``,
        from the answer head within the family's answers."""
        out: list[str] = []
        rows = torch.as_tensor(rows, dtype=torch.long)
        for start in range(0, len(questions), batch):
            stop = start + batch
            out += self.model.answer(z[rows[start:stop]], questions[start:stop],
                                     families[start:stop])
        return out

    @property
    def matcher(self) -> QuestionMatcher:
        if self._matcher is None:
            self._matcher = QuestionMatcher(self.vocab, self.model.text.features)
        return self._matcher

    def match(self, questions: list[str]) -> list[Match]:
        """Each free-text question checked and matched to the bank (see ``asking.py``)."""
        return self.matcher.match([check_question(q, k) for k, q in enumerate(questions)])

    @torch.no_grad()
    def answers(self, z: torch.Tensor, matches: list[Match]) -> list[list[Answer]]:
        """Every matched question about every pose of ``z``: ``[pose][question]``."""
        n = len(z)
        if not n or not matches:
            return [[] for _ in range(n)]
        head = [k for k, m in enumerate(matches) if not m.free_form]
        by_head: dict[tuple[int, int], str] = {}
        if head:
            pairs = [(r, k) for r in range(n) for k in head]
            got = self.answer_known(z, [r for r, _ in pairs],
                                    [matches[k].matched_question for _, k in pairs],
                                    [matches[k].family for _, k in pairs])
            by_head = dict(zip(pairs, got))
        free = [k for k, m in enumerate(matches) if m.free_form]
        by_decoder: dict[tuple[int, int], str] = {}
        if free:
            pairs = [(r, k) for r in range(n) for k in free]
            texts = []
            for start in range(0, len(pairs), self.batch_size):
                part = pairs[start:start + self.batch_size]
                texts += self.model.decoder.generate(
                    self.model.embedding_of(z[torch.tensor([r for r, _ in part])]),
                    [question_prompt(matches[k].question) for _, k in part])
            by_decoder = dict(zip(pairs, texts))
        out = []
        for r in range(n):
            person = []
            for k, m in enumerate(matches):
                if m.free_form:
                    text = by_decoder[r, k]
                    person.append(Answer(m.question, None, None, text, text, True, m.similarity))
                else:
                    a = by_head[r, k]
                    person.append(Answer(m.question, m.matched_question, m.family, a,
                                         self.vocab.sentences[m.matched_question][a], False,
                                         m.similarity))
            out.append(person)
        return out

    def questions(self) -> dict[str, list[str]]:
        """The families this model answers, with example phrasings."""
        return self.matcher.examples()

    # -- inputs to people -------------------------------------------------------------------

    @property
    def people_finder(self):
        if self._people_finder is None:
            from p2l3d_core.inference.people import PeopleFinder

            self._people_finder = PeopleFinder()
        return self._people_finder

    def find(self, value, keypoint_format: str = "coco17", name: str = "input") -> list[_Found]:
        """The people of one input (an image finds 0..n; keypoints are one person)."""
        if isinstance(value, Detected):
            found = [self._found(pose) for pose in value.people]
            return [f for f in found if joints_known(f.joints) >= MIN_JOINTS]
        is_keypoints = (isinstance(value, (list, tuple)) or
                        (isinstance(value, np.ndarray) and value.ndim == 2))
        if is_keypoints:
            kp = check_keypoints(value, keypoint_format, name)
            joints = to_model_joints(kp, keypoint_format)
            known = joints_known(joints)
            if known < MIN_JOINTS:
                raise BadInput(f"{name}: only {known} of 17 joints at or above confidence "
                               f"{MIN_CONFIDENCE}; at least {MIN_JOINTS} are needed")
            coco = to_coco17(kp, keypoint_format, joints)
            seen = kp[kp[:, 2] >= MIN_CONFIDENCE, 2]
            return [_Found(joints, Person(box_of(coco), round(float(seen.mean()), 4),
                                          coco.astype(np.float64).round(2).tolist()))]
        return self.find(Detected(self.people_finder(as_image(value, name))))

    @staticmethod
    def _found(pose) -> _Found:
        """An estimator's person (``bbox``, ``score``, COCO-17 ``keypoints``) for the model."""
        keypoints = np.asarray(pose.keypoints, dtype=np.float64)
        return _Found(to_model_joints(keypoints, "coco17"), Person(
            [round(float(v), 2) for v in pose.bbox], round(float(pose.score), 4),
            keypoints.round(2).tolist()))

    def describe(self, value, questions: list[str] | None = None,
                 keypoint_format: str = "coco17") -> list[Person]:
        """The people of one input with captions and answers; :class:`BadInput` if unusable."""
        result = self.describe_batch([value], questions, keypoint_format)[0]
        if result.error is not None:
            raise BadInput(result.error)
        return result.people

    def describe_batch(self, values: list, questions: list[str] | None = None,
                       keypoint_format: str = "coco17", names: list[str] | None = None
                       ) -> list[Described]:
        """:meth:`describe` for many inputs in one model pass. An unusable input gets its
        ``error``; the others are described as they would be alone. A bad question is an
        error of the whole call (:class:`BadInput`): it concerns every input."""
        clock = time.perf_counter()
        matches = self.match(list(questions or []))
        names = names or [f"input {i + 1}" for i in range(len(values))]
        results: list[Described] = []
        everyone: list[_Found] = []
        for value, name in zip(values, names):
            try:
                found = self.find(value, keypoint_format, name)
                results.append(Described([f.person for f in found]))
                everyone += found
            except BadInput as err:
                results.append(Described([], str(err)))
        found_at = time.perf_counter()
        if everyone:
            z = self.embed(np.stack([f.joints for f in everyone]))
            embedded_at = time.perf_counter()
            for f, caption in zip(everyone, self.captions(z)):
                f.person.caption = caption
            captioned_at = time.perf_counter()
            for f, answers in zip(everyone, self.answers(z, matches)):
                f.person.answers = answers
            done = time.perf_counter()
        else:
            embedded_at = captioned_at = done = found_at
        self.last_timings_ms = {k: round(1000 * v, 2) for k, v in {
            "people": found_at - clock, "embed": embedded_at - found_at,
            "caption": captioned_at - embedded_at, "answer": done - captioned_at,
            "total": done - clock}.items()}
        return results

    def describe_video(self, source, questions: list[str] | None = None, stride: int = 1,
                       name: str | None = None, frames_per_batch: int = 8
                       ) -> Iterator[tuple[int, np.ndarray, Described]]:
        """``(frame index, frame, Described)`` for every ``stride``-th frame of a video (a path
        or its bytes), described ``frames_per_batch`` frames at a time; each person carries a
        ``track`` id stable across frames (``video.Tracker``). :class:`BadInput` when the video
        has no readable frame."""
        from p2l3d_core.inference.video import Tracker, read_frames

        tracker = Tracker()
        name = name or (str(source) if not isinstance(source, (bytes, bytearray)) else "video")
        buffer: list[tuple[int, np.ndarray]] = []

        def flush() -> Iterator[tuple[int, np.ndarray, Described]]:
            results = self.describe_batch([f for _, f in buffer], questions,
                                          names=[f"{name} frame {i}" for i, _ in buffer])
            for (index, frame), result in zip(buffer, results):
                tracker.update(result.people)
                yield index, frame, result
            buffer.clear()

        for index, frame in read_frames(source, stride, name):
            buffer.append((index, frame))
            if len(buffer) == frames_per_batch:
                yield from flush()
        if buffer:
            yield from flush()
